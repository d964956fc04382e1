mod archive;
mod build;
mod containers;
mod events;
mod exec;
mod images;
mod networks;
mod prune;
mod registry;
mod resources;
mod system;
mod volumes;

use crate::AppState;
use axum::routing::{delete, get, post};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/auth", post(registry::login))
        .route("/distribution/{*name}", get(registry::distribution))
        .route("/events", get(events::events))
        .route("/system/df", get(prune::system_df))
        .route("/containers/prune", post(prune::containers))
        .route("/images/prune", post(prune::images))
        .route("/networks", get(networks::list))
        .route("/networks/", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/build", post(build::build))
        .route("/build/prune", post(build::prune))
        .route(
            "/build/context",
            // A manifest lists every path of a context: larger than axum's 2 MB default.
            post(build::compare_context).layer(axum::extract::DefaultBodyLimit::max(256 << 20)),
        )
        .route("/containers/json", get(containers::list))
        .route("/containers/create", post(containers::create))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}", delete(containers::remove))
        .route(
            "/containers/{id}/archive",
            get(archive::archive_get)
                .head(archive::archive_head)
                .put(archive::archive_put),
        )
        .route("/containers/{id}/export", get(archive::export))
        .route("/containers/{id}/changes", get(archive::changes))
        .route("/commit", post(archive::commit))
        .route("/containers/{id}/stats", get(resources::stats))
        .route("/containers/{id}/top", get(resources::top))
        .route("/containers/{id}/pause", post(resources::pause))
        .route("/containers/{id}/unpause", post(resources::unpause))
        .route("/containers/{id}/update", post(resources::update))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save_many))
        .route(
            "/images/{*name}",
            get(images::get_by_name)
                .post(images::post_by_name)
                .delete(images::remove),
        )
}
