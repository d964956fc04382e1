//! Registries that misbehave, served in-process: broken and stalled downloads (resumed with
//! Range), hangs (timeouts), oversized or wrong manifests, error bodies, redirects to storage,
//! upload Locations.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_distribution::{Access, Client, Credentials, DistributionError};
use common::*;
use futures_util::StreamExt as _;

/// What the blob server does with its n-th request.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Sends this many bytes of what was asked for, then breaks the connection.
    Cut(usize),
    /// Sends this many bytes, then nothing more.
    Stall(usize),
    /// Serves the request (206 for a Range).
    Serve,
    /// Serves the whole blob with 200, whatever the Range.
    IgnoreRange,
    /// Never answers.
    Hang,
}

struct BlobServer {
    data: Bytes,
    steps: Vec<Step>,
    ranges: Vec<Option<String>>,
}

type B = Arc<Mutex<BlobServer>>;

fn never<T: Send + 'static>() -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::pending()
}

async fn blob_handler(State(s): State<B>, headers: HeaderMap) -> Response {
    let (data, step, range) = {
        let mut b = s.lock().unwrap();
        let range = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let step = b.steps.get(b.ranges.len()).copied().unwrap_or(Step::Serve);
        b.ranges.push(range.clone());
        (b.data.clone(), step, range)
    };
    if let Step::Hang = step {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let start = match (step, &range) {
        (Step::IgnoreRange, _) | (_, None) => 0,
        (_, Some(r)) => r
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0),
    };
    let part = data.slice(start..);
    let body = match step {
        Step::Cut(n) => {
            // The break comes once the headers and the first bytes are out, as on a real
            // connection.
            let first = futures_util::stream::iter(vec![Ok(part.slice(..n))]);
            let cut = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::other("cut"))
            });
            Body::from_stream(first.chain(cut))
        }
        Step::Stall(n) => {
            let first = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(part.slice(..n))]);
            Body::from_stream(first.chain(never()))
        }
        _ => Body::from(part.clone()),
    };
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, part.len().into());
    if start > 0 {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        let cr = format!("bytes {start}-{}/{}", data.len() - 1, data.len());
        resp.headers_mut()
            .insert(header::CONTENT_RANGE, cr.parse().unwrap());
    }
    resp
}

async fn blob_server(data: Bytes, steps: Vec<Step>) -> (B, String) {
    let s: B = Arc::new(Mutex::new(BlobServer {
        data,
        steps,
        ranges: Vec::new(),
    }));
    let app = axum::Router::new()
        .route("/v2/x/blobs/{digest}", axum::routing::get(blob_handler))
        .with_state(s.clone());
    (s.clone(), serve(app).await.to_string())
}

fn fast_client(read_timeout: Duration) -> (Client, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    let mut cfg = config(certs.path());
    cfg.read_timeout = read_timeout;
    (Client::new(cfg).unwrap(), certs)
}

#[tokio::test]
async fn broken_download_resumes_with_range() {
    let blob = data(1024 * 1024, 7);
    let d = digest(&blob);
    let (s, addr) = blob_server(blob.clone(), vec![Step::Cut(300_000), Step::Cut(200_000)]).await;
    let (c, _certs) = client();
    let r = repo(&c, &addr, "x", Access::Pull);
    let mut dl = r.get_blob(&d, Some(blob.len() as u64)).await.unwrap();
    assert_eq!(dl.total, Some(blob.len() as u64));
    let got = collect(&mut dl).await.unwrap();
    assert!(got == blob, "the resumed stream equals the blob");
    assert_eq!(dl.resumed(), 2);
    let ranges = s.lock().unwrap().ranges.clone();
    assert_eq!(
        ranges,
        vec![
            None,
            Some("bytes=300000-".to_string()),
            Some("bytes=500000-".to_string())
        ]
    );
}

#[tokio::test]
async fn a_registry_ignoring_range_restarts_and_is_skipped() {
    let blob = data(500_000, 8);
    let (_s, addr) = blob_server(blob.clone(), vec![Step::Cut(123_457), Step::IgnoreRange]).await;
    let (c, _certs) = client();
    let r = repo(&c, &addr, "x", Access::Pull);
    let mut dl = r.get_blob(&digest(&blob), None).await.unwrap();
    assert!(collect(&mut dl).await.unwrap() == blob);
    assert_eq!(dl.resumed(), 1);
    // get_blob_bytes rides on the same machinery and verifies the digest.
    let (_s, addr) = blob_server(blob.clone(), vec![Step::Cut(1000)]).await;
    let r = repo(&c, &addr, "x", Access::Pull);
    assert_eq!(
        r.get_blob_bytes(&digest(&blob), 1 << 20).await.unwrap(),
        blob
    );
    let e = r
        .get_blob_bytes(&digest(b"other"), 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(e, DistributionError::DigestMismatch { .. }), "{e}");
}

#[tokio::test]
async fn a_stalled_download_times_out_and_resumes() {
    let blob = data(200_000, 9);
    let (s, addr) = blob_server(blob.clone(), vec![Step::Stall(50_000)]).await;
    let (c, _certs) = fast_client(Duration::from_millis(500));
    let r = repo(&c, &addr, "x", Access::Pull);
    let t = Instant::now();
    let mut dl = r
        .get_blob(&digest(&blob), Some(blob.len() as u64))
        .await
        .unwrap();
    assert!(collect(&mut dl).await.unwrap() == blob);
    assert_eq!(dl.resumed(), 1);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(s.lock().unwrap().ranges[1].as_deref(), Some("bytes=50000-"));
}

#[tokio::test]
async fn a_download_that_keeps_breaking_gives_up_after_five_resumes() {
    let blob = data(100_000, 10);
    let (s, addr) = blob_server(blob.clone(), vec![Step::Cut(1000); 10]).await;
    let (c, _certs) = client();
    let r = repo(&c, &addr, "x", Access::Pull);
    let mut dl = r.get_blob(&digest(&blob), None).await.unwrap();
    let mut got = 0;
    let e = loop {
        match dl.next_chunk().await {
            Ok(Some(c)) => got += c.len(),
            Ok(None) => panic!("ended"),
            Err(e) => break e,
        }
    };
    assert!(matches!(e, DistributionError::Transport(_)), "{e:?}");
    assert_eq!(dl.resumed(), 5);
    assert_eq!(got, 6000);
    assert_eq!(s.lock().unwrap().ranges.len(), 6);
}

#[tokio::test]
async fn a_hung_registry_is_a_timeout() {
    let blob = data(1000, 11);
    let (_s, addr) = blob_server(blob.clone(), vec![Step::Hang; 3]).await;
    let (c, _certs) = fast_client(Duration::from_millis(300));
    let r = repo(&c, &addr, "x", Access::Pull);
    let t = Instant::now();
    let e = r.get_blob(&digest(&blob), None).await.err().unwrap();
    let DistributionError::Timeout(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(
        msg.starts_with(&format!("Get \"http://{addr}/v2/x/blobs/sha256:")),
        "{msg}"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

/// Manifests and errors, by the reference asked for.
async fn manifest_handler(method: Method, uri: Uri) -> Response {
    let reference = uri
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let big = || Bytes::from(vec![b' '; berth_distribution::MAX_MANIFEST_BYTES + 1]);
    match reference.as_str() {
        "big" => (StatusCode::OK, big()).into_response(),
        "big-chunked" => {
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                big().chunks(65536).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            Body::from_stream(futures_util::stream::iter(chunks)).into_response()
        }
        "denied" => (
            StatusCode::FORBIDDEN,
            r#"{"errors":[{"code":"DENIED","message":"no way","detail":null}]}"#,
        )
            .into_response(),
        "boom" => (StatusCode::INTERNAL_SERVER_ERROR, "<html>oops</html>").into_response(),
        "huge-error" => {
            let chunks = (0..1000).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 65536])));
            (
                StatusCode::NOT_FOUND,
                Body::from_stream(futures_util::stream::iter(chunks)),
            )
                .into_response()
        }
        "generic" => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#,
        )
            .into_response(),
        "hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        // Any digest: a body that is not it.
        _ if reference.starts_with("sha256:") && method == Method::GET => {
            (StatusCode::OK, r#"{"schemaVersion":2}"#).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn manifest_server() -> String {
    let app = axum::Router::new().route(
        "/v2/x/manifests/{reference}",
        axum::routing::get(manifest_handler),
    );
    serve(app).await.to_string()
}

#[tokio::test]
async fn bad_manifests_and_error_bodies() {
    let addr = manifest_server().await;
    let (c, _certs) = fast_client(Duration::from_millis(500));
    let r = repo(&c, &addr, "x", Access::Pull);

    for reference in ["big", "big-chunked"] {
        let e = r.get_manifest(reference).await.unwrap_err();
        assert!(
            matches!(e, DistributionError::InvalidResponse(_)),
            "{reference}: {e:?}"
        );
    }

    let wanted = digest(b"the real one");
    let e = r.get_manifest(wanted.as_str()).await.unwrap_err();
    match e {
        DistributionError::DigestMismatch { expected, actual } => {
            assert_eq!(expected, wanted);
            assert_eq!(actual, digest(br#"{"schemaVersion":2}"#));
        }
        other => panic!("{other:?}"),
    }

    let e = r.get_manifest("denied").await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert_eq!(e.code(), Some("DENIED"));
    assert_eq!(e.to_string(), "denied: no way");
    assert!(e.is_auth());

    let e = r.get_manifest("boom").await.unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(e.code(), None);
    assert!(e.to_string().contains("500 Internal Server Error"), "{e}");

    // A huge error body is read only as far as the cap.
    let t = Instant::now();
    let e = r.get_manifest("huge-error").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));

    let m = r.get_manifest("generic").await.unwrap();
    assert_eq!(
        m.media_type,
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );

    let e = r.get_manifest("hang").await.unwrap_err();
    assert!(matches!(e, DistributionError::Timeout(_)), "{e:?}");
}

#[tokio::test]
async fn a_blob_longer_than_its_size_is_refused() {
    let blob = data(2000, 12);
    let (_s, addr) = blob_server(blob.clone(), vec![]).await;
    let (c, _certs) = client();
    let r = repo(&c, &addr, "x", Access::Pull);
    let e = r.get_blob(&digest(&blob), Some(1000)).await.err().unwrap();
    assert!(matches!(e, DistributionError::InvalidResponse(_)), "{e:?}");
}

/// A registry that wants basic auth and redirects blob reads to a storage host.
#[derive(Default)]
struct Redirecting {
    storage: String,
    storage_auth: Vec<Option<String>>,
}

type R = Arc<Mutex<Redirecting>>;

#[tokio::test]
async fn blob_redirects_are_followed_without_credentials() {
    let blob = data(10_000, 13);
    let s: R = Arc::default();
    let storage = {
        let s = s.clone();
        let blob = blob.clone();
        axum::Router::new().route(
            "/store/{key}",
            axum::routing::get(move |headers: HeaderMap| async move {
                s.lock().unwrap().storage_auth.push(
                    headers
                        .get(header::AUTHORIZATION)
                        .map(|v| v.to_str().unwrap().to_string()),
                );
                blob.clone()
            }),
        )
    };
    let storage_addr = serve(storage).await;
    s.lock().unwrap().storage = format!("http://{storage_addr}/store/k?sig=1");
    let registry = {
        let s = s.clone();
        axum::Router::new().route(
            "/v2/x/blobs/{digest}",
            axum::routing::get(move |headers: HeaderMap| async move {
                if !headers.contains_key(header::AUTHORIZATION) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        [(header::WWW_AUTHENTICATE, "Basic realm=\"r\"".to_string())],
                    )
                        .into_response();
                }
                let to = s.lock().unwrap().storage.clone();
                (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]).into_response()
            }),
        )
    };
    let addr = serve(registry).await.to_string();
    let (c, _certs) = client();
    let r = c.repository(&addr, "x", Credentials::basic("u", "secret"), Access::Pull);
    let mut dl = r
        .get_blob(&digest(&blob), Some(blob.len() as u64))
        .await
        .unwrap();
    assert!(collect(&mut dl).await.unwrap() == blob);
    assert_eq!(s.lock().unwrap().storage_auth, vec![None]);
}

/// An upload endpoint answering with relative and absolute Locations that carry state.
#[derive(Default)]
struct Uploads {
    base: String,
    seen: Vec<Seen>,
}

/// (method, path?query, content-length, transfer-encoding, content-type, body length)
type Seen = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    usize,
);

type U = Arc<Mutex<Uploads>>;

async fn upload_handler(
    State(s): State<U>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |n: header::HeaderName| headers.get(n).map(|v| v.to_str().unwrap().to_string());
    let mut u = s.lock().unwrap();
    let pq = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    u.seen.push((
        method.to_string(),
        pq,
        h(header::CONTENT_LENGTH),
        h(header::TRANSFER_ENCODING),
        h(header::CONTENT_TYPE),
        body.len(),
    ));
    match method {
        Method::POST => (
            StatusCode::ACCEPTED,
            [(
                header::LOCATION,
                "/v2/x/blobs/uploads/abc?_state=s1".to_string(),
            )],
        )
            .into_response(),
        Method::PATCH => (
            StatusCode::ACCEPTED,
            [(
                header::LOCATION,
                format!("{}/v2/x/blobs/uploads/abc?_state=s2", u.base),
            )],
        )
            .into_response(),
        Method::PUT => StatusCode::CREATED.into_response(),
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

#[tokio::test]
async fn uploads_follow_relative_and_absolute_locations() {
    let s: U = Arc::default();
    let app = axum::Router::new()
        .fallback(upload_handler)
        .with_state(s.clone());
    let addr = serve(app).await;
    s.lock().unwrap().base = format!("http://{addr}");
    let (c, _certs) = client();
    let r = repo(&c, &addr.to_string(), "x", Access::Push);

    let blob = data(700_000, 14);
    let d = digest(&blob);
    r.push_blob(&d, blob.clone()).await.unwrap();
    let chunks: Vec<std::io::Result<bytes::Bytes>> = blob
        .chunks(64 * 1024)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let (sd, size) = r
        .push_blob_stream(futures_util::stream::iter(chunks).boxed())
        .await
        .unwrap();
    assert_eq!((sd.clone(), size), (d.clone(), blob.len() as u64));

    let seen = s.lock().unwrap().seen.clone();
    let q = format!("digest={}", d.as_str().replace(':', "%3A"));
    let octet = Some("application/octet-stream".to_string());
    // Monolithic: POST, PUT with the body and its length at the relative Location.
    assert_eq!(seen[0].0, "POST");
    assert_eq!(seen[0].1, "/v2/x/blobs/uploads/");
    assert_eq!(seen[1].0, "PUT");
    assert_eq!(seen[1].1, format!("/v2/x/blobs/uploads/abc?_state=s1&{q}"));
    assert_eq!(seen[1].2, Some(blob.len().to_string()));
    assert_eq!(seen[1].4, octet);
    assert_eq!(seen[1].5, blob.len());
    // Streamed: one chunked PATCH, then an empty PUT at the PATCH's absolute Location.
    assert_eq!(seen[2].0, "POST");
    assert_eq!(seen[3].0, "PATCH");
    assert_eq!(seen[3].1, "/v2/x/blobs/uploads/abc?_state=s1");
    assert_eq!(seen[3].2, None);
    assert_eq!(seen[3].3.as_deref(), Some("chunked"));
    assert_eq!(seen[3].4, octet);
    assert_eq!(seen[3].5, blob.len());
    assert_eq!(seen[4].0, "PUT");
    assert_eq!(seen[4].1, format!("/v2/x/blobs/uploads/abc?_state=s2&{q}"));
    assert_eq!(seen[4].2.as_deref(), Some("0"));
    assert_eq!(seen[4].5, 0);
    assert_eq!(seen.len(), 5);
}

#[tokio::test]
async fn a_failing_upload_stream_cancels_the_session() {
    let s: U = Arc::default();
    let app = axum::Router::new()
        .fallback(upload_handler)
        .with_state(s.clone());
    let addr = serve(app).await;
    s.lock().unwrap().base = format!("http://{addr}");
    let (c, _certs) = client();
    let r = repo(&c, &addr.to_string(), "x", Access::Push);
    let items: Vec<std::io::Result<bytes::Bytes>> = vec![
        Ok(bytes::Bytes::from_static(b"some")),
        Err(std::io::Error::other("compressor failed")),
    ];
    let e = r
        .push_blob_stream(futures_util::stream::iter(items).boxed())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("compressor failed"), "{e}");
    let seen = s.lock().unwrap().seen.clone();
    let methods: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(methods.first(), Some(&"POST"));
    assert_eq!(methods.last(), Some(&"DELETE"), "{methods:?}");
    assert!(!methods.contains(&"PUT"));
}

/// A registry that opens the upload, then never reads the PATCH body nor answers.
async fn stuck_upload_server() -> String {
    let app = axum::Router::new().fallback(|method: Method| async move {
        if method == Method::POST {
            return (
                StatusCode::ACCEPTED,
                [(header::LOCATION, "/v2/x/blobs/uploads/u")],
            )
                .into_response();
        }
        if method == Method::PATCH {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        StatusCode::NO_CONTENT.into_response()
    });
    serve(app).await.to_string()
}

/// Endless 1 MiB chunks (bounded at 1 GiB).
fn endless() -> futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>> {
    let chunk = bytes::Bytes::from(vec![7u8; 1 << 20]);
    futures_util::stream::iter((0..1024).map(move |_| Ok(chunk.clone()))).boxed()
}

#[tokio::test]
async fn an_upload_the_registry_stops_taking_times_out() {
    let addr = stuck_upload_server().await;
    let (c, _certs) = fast_client(Duration::from_millis(500));
    let r = repo(&c, &addr, "x", Access::Push);
    let t = Instant::now();
    let e = r.push_blob_stream(endless()).await.unwrap_err();
    let DistributionError::Timeout(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(
        msg.starts_with(&format!("Patch \"http://{addr}/v2/x/blobs/uploads/u\"")),
        "{msg}"
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

/// A slow producer (a layer being compressed) is not the registry's stall: the upload takes
/// longer than the read timeout and succeeds.
#[tokio::test]
async fn a_slow_producer_is_not_a_timeout() {
    let s: U = Arc::default();
    let app = axum::Router::new()
        .fallback(upload_handler)
        .with_state(s.clone());
    let addr = serve(app).await;
    s.lock().unwrap().base = format!("http://{addr}");
    let (c, _certs) = fast_client(Duration::from_millis(300));
    let r = repo(&c, &addr.to_string(), "x", Access::Push);
    let slow = futures_util::stream::iter(0..4)
        .then(|i| async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok(bytes::Bytes::from(vec![i as u8; 1000]))
        })
        .boxed();
    let (_, size) = r.push_blob_stream(slow).await.unwrap();
    assert_eq!(size, 4000);
}

/// A listener whose accept queue is full: connecting hangs (the SYN is dropped).
#[tokio::test]
async fn a_registry_that_does_not_accept_is_a_connect_timeout() {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let certs = tempfile::tempdir().unwrap();
    let mut cfg = config(certs.path());
    cfg.connect_timeout = Duration::from_millis(400);
    let c = Client::new(cfg).unwrap();
    let t = Instant::now();
    let e = repo(&c, &addr.to_string(), "x", Access::Pull)
        .get_manifest("latest")
        .await
        .unwrap_err();
    let DistributionError::Timeout(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(msg.ends_with("dial tcp: i/o timeout"), "{msg}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    drop(listener);
}
