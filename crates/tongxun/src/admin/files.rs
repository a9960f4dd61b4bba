//! The Admin UI's page, served from the built files of the npm package `@socket.io/admin-ui`
//! (its `ui/dist` folder), so that it works where the hosted UI cannot be reached.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::OriginalUri;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_http::services::ServeDir;

/// Where the page links its icon font; the copy served beside it replaces it.
const ICONS_LINK: &str =
    "https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css";

/// The Admin UI's files, to mount at a path of the app's choice.
///
/// The package's page loads its fonts from the internet: a Google font (left out: the page
/// falls back to the system's sans-serif) and the Material Design icons, which
/// [`icons`](Self::icons) serves from the npm package `@mdi/font` instead, so that the page
/// needs nothing but this server.
///
/// # Examples
/// ```
/// use axum::Router;
/// use tongxun::admin::UiFiles;
///
/// let files = UiFiles::new("node_modules/@socket.io/admin-ui/ui/dist").icons("node_modules/@mdi/font");
/// let routes: Router = Router::new().nest("/admin/ui", files.router());
/// ```
#[derive(Debug, Clone)]
pub struct UiFiles {
    dist: PathBuf,
    icons: Option<PathBuf>,
}

impl UiFiles {
    /// The files of `dist`: the `ui/dist` folder of the installed `@socket.io/admin-ui`.
    pub fn new(dist: impl Into<PathBuf>) -> Self {
        UiFiles {
            dist: dist.into(),
            icons: None,
        }
    }

    /// Serves the icon font from `dir`, the installed `@mdi/font` package.
    pub fn icons(mut self, dir: impl Into<PathBuf>) -> Self {
        self.icons = Some(dir.into());
        self
    }

    /// The routes: the page at `/` (and `/index.html`), its scripts and styles, and the icons
    /// under `/mdi/`. Nested at `/admin/ui`, the page is at `/admin/ui/`.
    pub fn router(self) -> Router {
        let page = std::fs::read_to_string(self.dist.join("index.html"))
            .map(|html| local_page(&html, self.icons.is_some()))
            .map_err(|e| missing(&self.dist, &e));
        let index = move |OriginalUri(uri): OriginalUri| {
            let page = page.clone();
            async move { index(&uri, page) }
        };
        let mut router = Router::new()
            .route("/", get(index.clone()))
            .route("/index.html", get(index))
            .fallback_service(ServeDir::new(&self.dist));
        if let Some(icons) = &self.icons {
            router = router.nest_service("/mdi", ServeDir::new(icons));
        }
        router
    }
}

fn index(uri: &http::Uri, page: Result<String, String>) -> Response {
    // The page links its files relative to itself: `/admin/ui` must be `/admin/ui/`.
    let path = uri.path();
    if !path.ends_with('/') && !path.ends_with(".html") {
        return Redirect::permanent(&format!("{path}/")).into_response();
    }
    match page {
        Ok(html) => Html(html).into_response(),
        Err(message) => (http::StatusCode::NOT_FOUND, message).into_response(),
    }
}

fn missing(dist: &Path, e: &std::io::Error) -> String {
    tracing::warn!(dist = %dist.display(), "the Admin UI's files are missing: {e}");
    format!(
        "the Admin UI's files are not installed at {} ({e}): install the npm package @socket.io/admin-ui",
        dist.display()
    )
}

/// The package's page, linking the icons served beside it and no font from the internet.
fn local_page(html: &str, icons: bool) -> String {
    let mut page = String::with_capacity(html.len());
    let mut rest = html;
    // Each `<link ...>` to another host is replaced or left out; everything else is kept.
    while let Some(start) = rest.find("<link") {
        page.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('>') else {
            rest = &rest[start..];
            break;
        };
        let link = &rest[start..=start + len];
        if link.contains(ICONS_LINK) {
            if icons {
                page.push_str(&link.replace(ICONS_LINK, "mdi/css/materialdesignicons.min.css"));
            }
        } else if !link.contains("https://") && !link.contains("http://") {
            page.push_str(link);
        }
        rest = &rest[start + len + 1..];
    }
    page.push_str(rest);
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_local_icons_and_nothing_outside() {
        let html = r#"<head><link rel="icon" href="favicon.png"><link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto"><link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css"><link href="css/app.css" rel="stylesheet"></head>"#;
        assert_eq!(
            local_page(html, true),
            r#"<head><link rel="icon" href="favicon.png"><link rel="stylesheet" href="mdi/css/materialdesignicons.min.css"><link href="css/app.css" rel="stylesheet"></head>"#
        );
        assert!(!local_page(html, false).contains("mdi"));
    }
}
