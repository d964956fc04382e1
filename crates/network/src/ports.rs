//! Host port reservations. Published ports are forwarded by nftables DNAT, not by a proxy, but
//! the engine still binds each one (without listening) so that no other process can take it and
//! a port in use is reported as Docker does ("port is already allocated").

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{NetworkError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A bound socket holding a host port; dropping it frees the port.
#[derive(Debug)]
pub struct PortReservation {
    pub protocol: Protocol,
    pub host_ip: Option<IpAddr>,
    /// The port actually bound (the kernel's choice when 0 was asked for).
    pub port: u16,
    _socket: std::os::fd::OwnedFd,
}

/// Binds `port` (0: an ephemeral port) on `host_ip` (None: every address) in the current
/// network namespace. A port in use is `NetworkError::PortAllocated`.
///
/// TCP sockets are bound but never listen, so a connection that somehow reaches one (a
/// missing DNAT) is refused rather than accepted by the daemon. No `SO_REUSEADDR`: with it, two
/// non-listening sockets may share a port, and std's listeners set it.
pub fn reserve(protocol: Protocol, host_ip: Option<IpAddr>, port: u16) -> Result<PortReservation> {
    let sock_type = match protocol {
        Protocol::Tcp => libc::SOCK_STREAM,
        Protocol::Udp => libc::SOCK_DGRAM,
        Protocol::Sctp => {
            return Err(NetworkError::Invalid {
                what: "protocol",
                value: "sctp port publishing is not supported".into(),
            })
        }
    };
    let ip = host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let wanted = SocketAddr::new(ip, port);
    let socket = bound_socket(sock_type, wanted).map_err(|e| {
        if e.raw_os_error() == Some(libc::EADDRINUSE) {
            NetworkError::PortAllocated {
                addr: wanted.to_string(),
            }
        } else {
            NetworkError::Io(e)
        }
    })?;
    let port = local_port(&socket)?;
    Ok(PortReservation {
        protocol,
        host_ip,
        port,
        _socket: socket,
    })
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// libc rather than nix: nix's inet socket addresses need its `net` feature, which the
/// workspace does not enable.
fn bound_socket(sock_type: libc::c_int, addr: SocketAddr) -> io::Result<OwnedFd> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // CLOEXEC: nft, iptables and container processes must not inherit reservations.
    // SAFETY: socket(2) has no memory arguments; the new descriptor is owned from here on.
    let fd = unsafe {
        OwnedFd::from_raw_fd(check(libc::socket(
            domain,
            sock_type | libc::SOCK_CLOEXEC,
            0,
        ))?)
    };
    // SAFETY (both arms): the option and address pointers are valid for the lengths given.
    match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            check(unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sin as *const libc::sockaddr_in).cast(),
                    mem::size_of_val(&sin) as libc::socklen_t,
                )
            })?;
        }
        SocketAddr::V6(v6) => {
            // `::` would otherwise also take the IPv4 port, which is reserved separately.
            let on: libc::c_int = 1;
            check(unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_V6ONLY,
                    (&on as *const libc::c_int).cast(),
                    mem::size_of_val(&on) as libc::socklen_t,
                )
            })?;
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            check(unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sin6 as *const libc::sockaddr_in6).cast(),
                    mem::size_of_val(&sin6) as libc::socklen_t,
                )
            })?;
        }
    }
    Ok(fd)
}

fn local_port(socket: &OwnedFd) -> Result<u16> {
    // SAFETY: sockaddr_storage is plain data, large enough for any address getsockname writes;
    // the family tells which layout it holds.
    unsafe {
        let mut storage: libc::sockaddr_storage = mem::zeroed();
        let mut len = mem::size_of_val(&storage) as libc::socklen_t;
        check(libc::getsockname(
            socket.as_raw_fd(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ))?;
        let port = match storage.ss_family as libc::c_int {
            libc::AF_INET => (*(&storage as *const _ as *const libc::sockaddr_in)).sin_port,
            libc::AF_INET6 => (*(&storage as *const _ as *const libc::sockaddr_in6)).sin6_port,
            _ => return Err(io::Error::other("getsockname: not an inet socket").into()),
        };
        Ok(u16::from_be(port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// Runs `f` in a throwaway network namespace so the tests never hold the host's ports.
    fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let dir = tempfile::tempdir().unwrap();
        let pin = dir.path().join("ns");
        crate::netns::create(&pin).unwrap();
        let out = crate::netns::run_in(&pin, f);
        crate::netns::remove(&pin).unwrap();
        match out {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn second_reserve_is_port_allocated() {
        in_netns(|| {
            for protocol in [Protocol::Tcp, Protocol::Udp] {
                let first = reserve(protocol, None, 8080).unwrap();
                assert_eq!(first.port, 8080);
                let err = reserve(protocol, None, 8080).unwrap_err();
                assert!(matches!(err, NetworkError::PortAllocated { .. }), "{err:?}");
                assert_eq!(
                    err.to_string(),
                    "Bind for 0.0.0.0:8080 failed: port is already allocated"
                );
                // A specific address overlaps the wildcard one.
                let err = reserve(protocol, Some(LOCALHOST), 8080).unwrap_err();
                assert_eq!(
                    err.to_string(),
                    "Bind for 127.0.0.1:8080 failed: port is already allocated"
                );
            }
        })
    }

    #[test]
    fn port_zero_gets_an_ephemeral_port() {
        in_netns(|| {
            let tcp = reserve(Protocol::Tcp, Some(LOCALHOST), 0).unwrap();
            let udp = reserve(Protocol::Udp, None, 0).unwrap();
            assert_ne!(tcp.port, 0);
            assert_ne!(udp.port, 0);
            assert_eq!(tcp.host_ip, Some(LOCALHOST));
        })
    }

    #[test]
    fn std_listener_cannot_take_a_reserved_port_until_dropped() {
        in_netns(|| {
            let held = reserve(Protocol::Tcp, None, 0).unwrap();
            let port = held.port;
            assert!(std::net::TcpListener::bind(("0.0.0.0", port)).is_err());
            assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
            let udp = reserve(Protocol::Udp, None, 5353).unwrap();
            assert!(std::net::UdpSocket::bind("0.0.0.0:5353").is_err());
            drop(held);
            drop(udp);
            assert!(std::net::TcpListener::bind(("0.0.0.0", port)).is_ok());
            assert!(std::net::UdpSocket::bind("0.0.0.0:5353").is_ok());
        })
    }

    #[test]
    fn ipv6_is_separate_from_ipv4() {
        in_netns(|| {
            let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
            let _v4 = reserve(Protocol::Tcp, None, 9000).unwrap();
            let v6 = reserve(Protocol::Tcp, Some(any6), 9000).unwrap();
            assert_eq!(v6.port, 9000);
            let err = reserve(Protocol::Tcp, Some(any6), 9000).unwrap_err();
            assert_eq!(
                err.to_string(),
                "Bind for [::]:9000 failed: port is already allocated"
            );
        })
    }

    #[test]
    fn sctp_is_refused() {
        let err = reserve(Protocol::Sctp, None, 80).unwrap_err();
        assert!(matches!(err, NetworkError::Invalid { .. }), "{err:?}");
    }
}
