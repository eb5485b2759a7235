//! `GET /s/{token}`: the public disclosure page (California AB 723, docs/disclosure.md). Each
//! original photo, labelled "Original, unaltered photo", above its altered versions, each labelled
//! "Virtually staged (digitally altered)", with the statement in plain words and the listing's
//! name. Plain HTML and one inline style sheet: no JavaScript, no tracking, no external fonts,
//! `noindex`, a CSP that allows only that style sheet and the storage host's images, and image
//! links valid for 15 minutes. A revoked link answers 410 and an unknown one 404, in the same
//! chrome; nothing about the owner is shown beyond the project name and the shared photos.

use std::fmt::Write as _;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use url::Url;

use crate::db::images::Image;
use crate::db::share_links;
use crate::platform::error::ApiError;
use crate::platform::state::SharePageState;
use crate::sharing::links::{PAGE_IMAGE_TTL, looks_like_token};
use crate::staging::imaging::RenditionSize;
use crate::staging::renditions::{self, Photo as RenditionOf};
use crate::staging::vocabulary::Operation;

/// At most this many photos on one page (a listing has dozens).
const MAX_PHOTOS: i64 = 200;

pub const ORIGINAL_LABEL: &str = "Original, unaltered photo";
pub const ALTERED_LABEL: &str = "Virtually staged (digitally altered)";
pub const STATEMENT: &str = "Some photos of this property have been digitally altered: furniture, decor or \
     lighting was added, removed or changed by software and is not part of the property as it is. Each \
     altered photo is shown below together with the original, unaltered photo it was made from.";

const STYLE: &str = "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
color:#1d1d1f;background:#f5f5f7}main{max-width:1100px;margin:0 auto;padding:16px}\
h1{font-size:1.4rem;margin:.5rem 0}.statement{background:#fff;border-left:4px solid #b45309;padding:12px 16px;\
margin:12px 0 24px}section{background:#fff;border-radius:8px;padding:12px;margin:0 0 24px}\
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:12px}\
figure{margin:0}img{display:block;width:100%;height:auto;border-radius:4px;background:#ddd}\
figcaption{font-weight:600;padding:6px 0}.original figcaption{color:#166534}.altered figcaption{color:#b45309}\
.note{font-weight:400;color:#555}footer{color:#555;font-size:.85rem;padding:8px 0 32px}";

/// The CSP hash of [`STYLE`], so no other style can apply.
static STYLE_HASH: LazyLock<String> = LazyLock::new(|| {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLE.as_bytes());
    format!("'sha256-{}'", STANDARD.encode(digest.as_ref()))
});

/// What became of the photo, in the words a buyer reads.
fn operation_note(operation: Operation) -> &'static str {
    match operation {
        Operation::Stage => "furniture and decor added",
        Operation::Declutter => "furniture and clutter removed",
        Operation::DeclutterAndStage => "furniture replaced",
        Operation::Twilight => "sky and lighting changed to dusk",
    }
}

pub async fn handle(state: &SharePageState, token: &str) -> Result<Response<Body>, ApiError> {
    if !looks_like_token(token) {
        return Ok(not_found());
    }
    let Some(link) = share_links::by_token(&state.db, token).await? else {
        return Ok(not_found());
    };
    if link.revoked_at.is_some() {
        return Ok(gone("The owner of this page has withdrawn it."));
    }
    let (name, images) = share_links::page_contents(&state.db, &link, MAX_PHOTOS).await?;
    let Some(name) = name else {
        return Ok(gone("This listing is no longer available."));
    };
    if link.image_id.is_some() && images.is_empty() {
        return Ok(gone("This photo is no longer available."));
    }
    let mut photos = Vec::with_capacity(images.len());
    for image in images {
        photos.push(Photo::sign(&state.storage, image).await?);
    }
    let origins: Vec<String> = photos
        .iter()
        .flat_map(|p| p.original.urls().chain(p.altered.urls()))
        .filter_map(origin)
        .collect();
    Ok(html(StatusCode::OK, &render(&name, &photos), &origins))
}

struct Photo {
    original_key: String,
    original: Picture,
    altered: Picture,
    operation: Operation,
}

/// One photo on the page: the web size (1600 px) with the preview (480 px) for small screens once
/// the image has its renditions, else the stored photo itself.
struct Picture {
    src: String,
    preview: Option<String>,
}

impl Picture {
    fn urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.src.as_str()).chain(self.preview.as_deref())
    }

    fn img(&self, alt: &str) -> String {
        match &self.preview {
            Some(preview) => format!(
                "<img src=\"{}\" srcset=\"{} 480w, {} 1600w\" sizes=\"(max-width: 640px) 100vw, 540px\" alt=\"{alt}\">",
                escape(&self.src),
                escape(preview),
                escape(&self.src)
            ),
            None => format!("<img src=\"{}\" alt=\"{alt}\">", escape(&self.src)),
        }
    }
}

impl Photo {
    async fn sign(storage: &crate::clients::storage::Storage, image: Image) -> Result<Photo, ApiError> {
        let sign = |key: String| async move {
            storage
                .presign_download(&key, PAGE_IMAGE_TTL, None)
                .await
                .map(|p| p.url)
                .map_err(|e| ApiError::unavailable("Storage is temporarily unavailable", e))
        };
        let picture = |photo: RenditionOf, full: String| {
            let renditions = image.renditions_at.is_some();
            async move {
                Ok::<_, ApiError>(match renditions {
                    true => Picture {
                        src: sign(renditions::key(image.user_id, image.id, photo, RenditionSize::Web)).await?,
                        preview: Some(
                            sign(renditions::key(image.user_id, image.id, photo, RenditionSize::Preview)).await?,
                        ),
                    },
                    false => Picture {
                        src: sign(full).await?,
                        preview: None,
                    },
                })
            }
        };
        Ok(Photo {
            original: picture(RenditionOf::Original, image.original_key.clone()).await?,
            altered: picture(RenditionOf::Staged, image.staged_key.clone().unwrap_or_default()).await?,
            original_key: image.original_key.clone(),
            operation: image.operation,
        })
    }
}

fn origin(url: &str) -> Option<String> {
    let parsed = Url::parse(url).ok()?;
    Some(parsed.origin().ascii_serialization())
}

/// The page body: one section per original (rows arrive grouped by original), the original first.
fn render(name: &str, photos: &[Photo]) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{}</h1><p class=\"statement\"><strong>Digitally altered photos.</strong> {STATEMENT}</p>",
        escape(name)
    );
    if photos.is_empty() {
        body.push_str("<p>No altered photos are published on this page yet.</p>");
    }
    let mut i = 0;
    while i < photos.len() {
        let group: Vec<&Photo> = photos[i..]
            .iter()
            .take_while(|p| p.original_key == photos[i].original_key)
            .collect();
        let _ = write!(
            body,
            "<section><div class=\"pair\"><figure class=\"original\"><figcaption>{ORIGINAL_LABEL}</figcaption>{}</figure>",
            group[0].original.img(ORIGINAL_LABEL)
        );
        for photo in &group {
            let _ = write!(
                body,
                "<figure class=\"altered\"><figcaption>{ALTERED_LABEL} <span class=\"note\">({})</span></figcaption>{}</figure>",
                operation_note(photo.operation),
                photo.altered.img(ALTERED_LABEL)
            );
        }
        body.push_str("</div></section>");
        i += group.len();
    }
    page(name, &body)
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex,nofollow\"><meta name=\"referrer\" content=\"no-referrer\">\
         <title>{} · original and virtually staged photos</title><style>{STYLE}</style></head>\
         <body><main>{body}<footer>This page shows the original photos behind digitally altered listing photos, \
         as California Business and Professions Code §10140.8 asks. Provided by Real Staging AI.</footer>\
         </main></body></html>",
        escape(title)
    )
}

fn not_found() -> Response<Body> {
    html(
        StatusCode::NOT_FOUND,
        &page(
            "Page not found",
            "<h1>Page not found</h1><p>There is no photo page at this address. Check the link you were given.</p>",
        ),
        &[],
    )
}

fn gone(reason: &str) -> Response<Body> {
    html(
        StatusCode::GONE,
        &page(
            "No longer available",
            &format!("<h1>No longer available</h1><p>{}</p>", escape(reason)),
        ),
        &[],
    )
}

fn html(status: StatusCode, text: &str, image_origins: &[String]) -> Response<Body> {
    let mut origins: Vec<&str> = image_origins.iter().map(String::as_str).collect();
    origins.sort_unstable();
    origins.dedup();
    let img_src = if origins.is_empty() {
        "'none'".to_owned()
    } else {
        origins.join(" ")
    };
    let csp = format!(
        "default-src 'none'; img-src {img_src}; style-src {}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
        *STYLE_HASH
    );
    let mut response = Response::new(Body::Text(text.to_owned()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex, nofollow"));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// HTML text and attribute escaping.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_the_csp_hash_matches_the_style() {
        let html = page("<script>alert(1)</script> & \"x\"", "");
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"));
        assert!(html.contains(&format!("<style>{STYLE}</style>")));
        assert!(STYLE_HASH.starts_with("'sha256-") && STYLE_HASH.len() == 53);
    }
}
