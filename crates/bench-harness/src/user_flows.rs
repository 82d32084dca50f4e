//! The user scenarios: device code and username/password (ROPC), signed in as the emulator's demo user.
//!
//! Their samples (`samples/device-code`, `samples/username-password`) are new; while a package is missing or
//! does not build, the runner skips its scenario with "skipped: sample not built yet" and never makes a number
//! up.

use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, Emulator, EmulatorBuilder};

use crate::scenario::{DeviceCode, Env, Scenario, python_common, rust_common};

/// Polling interval the emulator announces for device codes: the smallest, so that approval → exit measures
/// the clients more than the wait for their next poll (both clients are told the same interval).
pub const DEVICE_CODE_INTERVAL_SECS: u64 = 1;

/// Emulator settings the user scenarios need.
pub fn configure(builder: EmulatorBuilder) -> EmulatorBuilder {
    builder.device_code_interval(DEVICE_CODE_INTERVAL_SECS)
}

fn app_id(emu: &Emulator, name: &str) -> anyhow::Result<String> {
    emu.app(name)
        .map(|a| a.app_id)
        .ok_or_else(|| anyhow::anyhow!("the emulator has no seeded '{name}' app"))
}

/// The user code in the service's message: "… enter the code ABCD1234 to authenticate."
pub fn find_user_code(line: &str) -> Option<String> {
    let (_, after) = line.split_once("enter the code ")?;
    let code: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!code.is_empty()).then_some(code)
}

fn approve(emu: &Emulator, user_code: &str) -> anyhow::Result<()> {
    emu.approve_device_code(user_code, DEMO_USERNAME)
        .map_err(|e| anyhow::anyhow!("the emulator did not approve {user_code}: {e}"))
}

fn with_scope(mut env: Env, scope: &str) -> Env {
    // Both clients ask for the same scopes (their defaults differ for username/password).
    env.push(("SCOPE".into(), scope.into()));
    env
}

/// Device code: `/me` as the signed-in user. Measured in two parts: spawn → code shown, approval → exit.
pub fn device_code() -> Scenario {
    Scenario {
        name: "device-code",
        package: "device-code",
        bin: "device-code",
        python_script: "device_flow_sample.py",
        rust_env: |emu| {
            Ok(with_scope(
                rust_common(emu, &app_id(emu, "device-code")?, "me"),
                "User.Read",
            ))
        },
        python_env: |emu| {
            Ok(with_scope(
                python_common(emu, &app_id(emu, "device-code")?, "me"),
                "User.Read",
            ))
        },
        device_code: Some(DeviceCode {
            find_code: find_user_code,
            approve,
        }),
        needs_port_443: false,
    }
}

/// Username/password (ROPC): `/users` as the signed-in user. MSAL Python calls user realm discovery on port
/// 443 whatever the authority's port, so the emulator must listen there.
pub fn username_password() -> Scenario {
    const SCOPE: &str = "User.ReadBasic.All";
    Scenario {
        name: "username-password",
        package: "username-password",
        bin: "username-password",
        python_script: "username_password_sample.py",
        rust_env: |emu| {
            let mut e = rust_common(emu, &app_id(emu, "username-password")?, "users");
            e.push(("AZURE_USERNAME".into(), DEMO_USERNAME.into()));
            e.push(("AZURE_PASSWORD".into(), DEMO_PASSWORD.into()));
            Ok(with_scope(e, SCOPE))
        },
        python_env: |emu| {
            let mut e = python_common(emu, &app_id(emu, "username-password")?, "users");
            e.push(("USERNAME".into(), DEMO_USERNAME.into()));
            e.push(("PASSWORD".into(), DEMO_PASSWORD.into()));
            Ok(with_scope(e, SCOPE))
        },
        device_code: None,
        needs_port_443: true,
    }
}

#[cfg(test)]
mod tests {
    use super::find_user_code;

    #[test]
    fn finds_the_user_code_in_the_service_message() {
        let line = "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter \
                    the code GK4B9WXTQ to authenticate.\n";
        assert_eq!(find_user_code(line).as_deref(), Some("GK4B9WXTQ"));
        assert_eq!(find_user_code("Graph API call result: {}"), None);
        assert_eq!(find_user_code("enter the code  to authenticate"), None);
    }
}
