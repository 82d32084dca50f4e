//! Tenancy: the tenant segment of an identity-platform URL (`common`, `organizations`, `consumers`, a GUID
//! or a domain), and what it resolves to in the directory.

use crate::directory::MSA_TENANT_ID;
use crate::ids::is_guid;

/// The tenant segment of an identity-platform URL, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TenantSegment {
    Common,
    Organizations,
    Consumers,
    /// A GUID or a DNS name; may or may not exist in the directory.
    Specific(String),
    /// Neither a GUID nor a DNS name (AADSTS900023).
    Invalid(String),
}

impl TenantSegment {
    pub fn parse(segment: &str) -> Self {
        match segment.to_ascii_lowercase().as_str() {
            "common" => return Self::Common,
            "organizations" => return Self::Organizations,
            "consumers" => return Self::Consumers,
            _ => {}
        }
        if is_guid(segment) || is_dns_name(segment) {
            Self::Specific(segment.to_owned())
        } else {
            Self::Invalid(segment.to_owned())
        }
    }
}

/// A syntactically valid DNS name (single labels such as `contoso` included: the real service answers
/// "tenant not found" for them, not "invalid identifier").
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A tenant segment resolved against the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ResolvedTenant {
    Common,
    Organizations,
    Consumers,
    Tenant { id: String },
}

impl ResolvedTenant {
    /// The path segment endpoints are published under (the GUID for a specific tenant).
    pub(crate) fn segment(&self) -> &str {
        match self {
            ResolvedTenant::Common => "common",
            ResolvedTenant::Organizations => "organizations",
            ResolvedTenant::Consumers => "consumers",
            ResolvedTenant::Tenant { id } => id,
        }
    }

    /// The tenant id that goes into issuers (`{tenantid}` template for multi-tenant segments).
    pub(crate) fn issuer_tenant(&self) -> &str {
        match self {
            ResolvedTenant::Common | ResolvedTenant::Organizations => "{tenantid}",
            ResolvedTenant::Consumers => MSA_TENANT_ID,
            ResolvedTenant::Tenant { id } => id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_segments() {
        assert_eq!(TenantSegment::parse("Common"), TenantSegment::Common);
        assert_eq!(
            TenantSegment::parse("organizations"),
            TenantSegment::Organizations
        );
        assert_eq!(TenantSegment::parse("consumers"), TenantSegment::Consumers);
        assert!(matches!(
            TenantSegment::parse("contoso.onmicrosoft.com"),
            TenantSegment::Specific(_)
        ));
        assert!(matches!(
            TenantSegment::parse("contoso"),
            TenantSegment::Specific(_)
        ));
        assert!(matches!(
            TenantSegment::parse("3f2c8a91-5b7e-4d06-9c1a-8e4b2d7f6a53"),
            TenantSegment::Specific(_)
        ));
        assert!(matches!(
            TenantSegment::parse("not_a_tenant"),
            TenantSegment::Invalid(_)
        ));
        assert!(matches!(
            TenantSegment::parse("{tenant id}"),
            TenantSegment::Invalid(_)
        ));
        assert!(matches!(TenantSegment::parse("a..b"), TenantSegment::Invalid(_)));
    }
}
