//! What the other files share: which identity ([`ManagedIdentityId`]), which source
//! ([`ManagedIdentitySource`]), and one token request as the sources see it.

use std::fmt;

/// Where the token comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManagedIdentitySource {
    /// Service Fabric's token service (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`, `IDENTITY_SERVER_THUMBPRINT`).
    ServiceFabric,
    /// App Service, Azure Functions, Azure Automation (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`).
    AppService,
    /// Azure Machine Learning compute (`MSI_ENDPOINT`, `MSI_SECRET`).
    AzureMl,
    /// Azure Arc-enabled servers (`IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`, or the agent installed).
    AzureArc,
    /// Azure Cloud Shell (`AZUREPS_HOST_ENVIRONMENT=cloud-shell...`): user tokens only, refused here.
    CloudShell,
    /// The Instance Metadata Service of Azure VMs, scale sets and AKS nodes: the default.
    Imds,
}

impl fmt::Display for ManagedIdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ManagedIdentitySource::ServiceFabric => "Service Fabric",
            ManagedIdentitySource::AppService => "App Service",
            ManagedIdentitySource::AzureMl => "Azure Machine Learning",
            ManagedIdentitySource::AzureArc => "Azure Arc",
            ManagedIdentitySource::CloudShell => "Cloud Shell",
            ManagedIdentitySource::Imds => "IMDS",
        })
    }
}

/// Which managed identity: the host's own (system-assigned), or a user-assigned one by any of its ids.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManagedIdentityId {
    /// The identity of the resource itself.
    #[default]
    SystemAssigned,
    /// A user-assigned identity by its client (application) id.
    ClientId(String),
    /// A user-assigned identity by its object (principal) id.
    ObjectId(String),
    /// A user-assigned identity by its Azure resource id
    /// (`/subscriptions/…/resourceGroups/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/…`).
    ResourceId(String),
}

impl fmt::Display for ManagedIdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagedIdentityId::SystemAssigned => f.write_str("system-assigned"),
            ManagedIdentityId::ClientId(id) => write!(f, "with client id {id}"),
            ManagedIdentityId::ObjectId(id) => write!(f, "with object id {id}"),
            ManagedIdentityId::ResourceId(id) => write!(f, "with resource id {id}"),
        }
    }
}

impl ManagedIdentityId {
    /// The query parameter selecting this identity, in the source's spelling.
    pub(crate) fn query_pair<'a>(
        &'a self,
        client_id: &'static str,
        object_id: &'static str,
        resource_id: &'static str,
    ) -> Option<(&'static str, &'a str)> {
        match self {
            ManagedIdentityId::SystemAssigned => None,
            ManagedIdentityId::ClientId(id) => Some((client_id, id.as_str())),
            ManagedIdentityId::ObjectId(id) => Some((object_id, id.as_str())),
            ManagedIdentityId::ResourceId(id) => Some((resource_id, id.as_str())),
        }
    }

    /// The cache's client id for this identity (MSAL Python's convention for the system-assigned one).
    pub(crate) fn cache_client_id(&self) -> String {
        match self {
            ManagedIdentityId::SystemAssigned => "system_assigned_managed_identity".into(),
            ManagedIdentityId::ClientId(id)
            | ManagedIdentityId::ObjectId(id)
            | ManagedIdentityId::ResourceId(id) => id.clone(),
        }
    }
}

/// One token request, as the sources see it.
#[derive(Debug)]
pub(crate) struct TokenRequest<'a> {
    pub(crate) resource: &'a str,
    pub(crate) id: &'a ManagedIdentityId,
    pub(crate) now: u64,
}
