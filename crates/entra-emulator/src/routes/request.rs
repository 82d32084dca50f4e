//! Request parsing shared by the identity-platform routes: the form body and the tenant path segment.

use crate::error_responses::AadError;
use crate::state::AppState;
use crate::tenancy::{ResolvedTenant, TenantSegment};

/// The parsed form body (first non-empty value wins for repeated names).
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// Resolves the `{t}` path segment; `not_found_error` is the OAuth `error` used for AADSTS90002.
pub(crate) fn resolve_tenant(
    state: &AppState,
    segment: &str,
    not_found_error: &'static str,
) -> Result<ResolvedTenant, AadError> {
    match TenantSegment::parse(segment) {
        TenantSegment::Common => Ok(ResolvedTenant::Common),
        TenantSegment::Organizations => Ok(ResolvedTenant::Organizations),
        TenantSegment::Consumers => Ok(ResolvedTenant::Consumers),
        TenantSegment::Invalid(s) => Err(AadError::invalid_tenant_syntax(&s)),
        TenantSegment::Specific(s) => state
            .directory()
            .tenant(&s)
            .map(|t| ResolvedTenant::Tenant { id: t.id.clone() })
            .ok_or_else(|| AadError::tenant_not_found(&s, not_found_error)),
    }
}
