//! A minimal authenticated GET for Microsoft Graph that understands Graph's error envelope and paging.

use serde_json::Value;
use url::Url;

use crate::authority::ensure_secure;
use crate::error::{ConfigError, HttpError, Result};
use crate::http::{HttpClient, RequestContext};
use crate::secret::AccessToken;

/// Base URL of Microsoft Graph v1.0 in the public cloud.
pub const GRAPH_V1: &str = "https://graph.microsoft.com/v1.0";

/// Calls Microsoft Graph with a bearer token.
#[derive(Clone, Debug)]
pub struct GraphClient {
    http: HttpClient,
}

impl GraphClient {
    /// Uses the given HTTP client (share the identity client's: [`crate::ConfidentialClient::http_client`]).
    pub fn new(http: HttpClient) -> Self {
        GraphClient { http }
    }

    /// `GET url` with the token; returns the JSON answer. Graph errors come back as [`crate::GraphError`].
    pub async fn get(&self, url: &str, token: &AccessToken) -> Result<Value> {
        let parsed = parse_graph_url(url)?;
        self.http
            .get_graph_json(parsed.as_str(), token, &RequestContext::new())
            .await
    }

    /// Follows `@odata.nextLink` from `url` and returns the items of every page's `value`, at most `max_pages`
    /// pages. Next links are followed verbatim, and only on the same origin, so the token goes nowhere else.
    pub async fn get_all_pages(
        &self,
        url: &str,
        token: &AccessToken,
        max_pages: usize,
    ) -> Result<Vec<Value>> {
        let first = parse_graph_url(url)?;
        let ctx = RequestContext::new();
        let mut items = Vec::new();
        let mut next = Some(first.clone());
        let mut pages = 0;
        while let Some(page_url) = next.take() {
            if pages == max_pages {
                break;
            }
            let page = self.http.get_graph_json(page_url.as_str(), token, &ctx).await?;
            pages += 1;
            match page.get("value") {
                Some(Value::Array(values)) => items.extend(values.iter().cloned()),
                _ => {
                    return Err(HttpError::InvalidResponse {
                        url: page_url.to_string(),
                        reason: "a collection page has no 'value' array".into(),
                    }
                    .into());
                }
            }
            if let Some(link) = page.get("@odata.nextLink").and_then(Value::as_str) {
                let link_url = parse_graph_url(link)?;
                if link_url.origin() != first.origin() {
                    return Err(HttpError::InvalidResponse {
                        url: page_url.to_string(),
                        reason: format!(
                            "@odata.nextLink points to another host ({link}); not sending the token there"
                        ),
                    }
                    .into());
                }
                next = Some(link_url);
            }
        }
        Ok(items)
    }
}

fn parse_graph_url(url: &str) -> Result<Url, ConfigError> {
    let parsed = Url::parse(url).map_err(|e| ConfigError::InvalidUrl {
        setting: "the Graph endpoint",
        value: url.to_string(),
        reason: e.to_string(),
    })?;
    ensure_secure(&parsed)?;
    Ok(parsed)
}
