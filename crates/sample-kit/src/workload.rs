//! Settings of the workload-identity sample: the federated token file Kubernetes projects into the pod.

use clap::Args;
use identity_core::FederatedCredential;

use crate::config::{CredentialArgs, expand_home};
use crate::error::{Missing, SetupError};

/// The federated token of workload-identity (workload identity federation).
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Credential")]
pub struct WorkloadArgs {
    /// File holding the federated token (a Kubernetes service-account token, rotated by the kubelet). The AKS
    /// workload identity webhook sets it to /var/run/secrets/azure/tokens/azure-identity-token; it is re-read
    /// as it rotates.
    #[arg(
        long = "federated-token-file",
        env = "AZURE_FEDERATED_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub federated_token_file: Option<std::path::PathBuf>,
}

impl CredentialArgs for WorkloadArgs {
    type Credential = FederatedCredential;

    fn any_set(&self) -> bool {
        self.federated_token_file.is_some()
    }

    fn missing(&self) -> Vec<Missing> {
        match &self.federated_token_file {
            Some(path) if !path.as_os_str().is_empty() => vec![],
            _ => vec![Missing {
                variable: "AZURE_FEDERATED_TOKEN_FILE",
                where_to_find: "set by the AKS workload identity webhook in pods labelled azure.workload.identity/use=true; elsewhere, the file your cluster projects the service-account token (audience api://AzureADTokenExchange) into",
            }],
        }
    }

    fn into_credential(self) -> Result<FederatedCredential, SetupError> {
        let path = expand_home(
            "AZURE_FEDERATED_TOKEN_FILE",
            &self.federated_token_file.unwrap_or_default(),
        )?;
        Ok(FederatedCredential::from_file(path))
    }

    #[cfg(feature = "embedded-emulator")]
    fn from_emulator(
        emulator: &entra_emulator::Emulator,
    ) -> Result<(entra_emulator::AppRegistration, FederatedCredential), SetupError> {
        let app = emulator
            .app("workload")
            .ok_or_else(|| SetupError::Emulator("it has no 'workload' app".into()))?;
        // The emulator plays the cluster: its issuer mints the service-account token, written where the
        // kubelet would project it (in the emulator's own temporary state directory).
        let path = emulator
            .default_description_path()
            .with_file_name("azure-identity-token");
        emulator
            .write_workload_token_file(&path, &entra_emulator::WorkloadToken::new())
            .map_err(|e| SetupError::Emulator(format!("it could not write a workload token: {e}")))?;
        Ok((app, FederatedCredential::from_file(path)))
    }

    #[cfg(feature = "embedded-emulator")]
    fn emulator_notice(&self) -> String {
        format!(
            "It also plays the cluster's token issuer: the service-account token ({}) is the federated credential.",
            entra_emulator::WORKLOAD_SUBJECT
        )
    }
}
