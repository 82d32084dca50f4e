//! The device-code prompt: the service's message, the code shown prominently, a QR code of the page, and a
//! countdown while waiting; Ctrl-C stops cleanly.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use identity_core::{DeviceFlow, Error, TokenResult};

/// The user pressed Ctrl-C while the sample waited for the sign-in. Exit code 130, as for any interrupted
/// command.
#[derive(Debug, thiserror::Error)]
#[error("sign-in cancelled (Ctrl-C); nothing was cached")]
pub struct Cancelled;

/// Shows the device-code instructions and waits for `sign_in` (the polling future) to finish, with a live
/// countdown when stdout is a terminal. Ctrl-C drops the polling future and returns [`Cancelled`].
pub async fn wait_for_sign_in(
    flow: &DeviceFlow,
    no_qr: bool,
    sign_in: impl Future<Output = Result<TokenResult, Error>>,
) -> anyhow::Result<TokenResult> {
    let terminal = std::io::stdout().is_terminal();
    println!("{}", flow.message);
    if terminal {
        println!("\n    Code: \x1b[1m{}\x1b[0m\n", flow.user_code);
        if !no_qr {
            match qr_code(&flow.verification_uri) {
                Some(qr) => println!("Or scan this to open {}:\n{qr}", flow.verification_uri),
                None => tracing::debug!("the verification URI does not fit in a QR code"),
            }
        }
    }
    // Tests and scripts read the message as soon as it is written.
    let _ = std::io::stdout().flush();

    let deadline = flow.expires_at();
    let countdown = async {
        if !terminal {
            return std::future::pending::<()>().await;
        }
        let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        let mut tick = tokio::time::interval(Duration::from_millis(125));
        for frame in frames.iter().cycle() {
            tick.tick().await;
            let left = deadline.saturating_duration_since(Instant::now()).as_secs();
            eprint!(
                "\r{frame} Waiting for you to sign in… {:02}:{:02} left ",
                left / 60,
                left % 60
            );
        }
    };
    let outcome = tokio::select! {
        result = sign_in => result.map_err(anyhow::Error::from),
        _ = tokio::signal::ctrl_c() => Err(Cancelled.into()),
        _ = countdown => unreachable_countdown(),
    };
    if terminal {
        // Clear the countdown line.
        eprint!("\r\x1b[2K");
    }
    outcome
}

fn unreachable_countdown() -> anyhow::Result<TokenResult> {
    Err(anyhow::anyhow!("the countdown stopped"))
}

/// A QR code drawn with half-block characters (two modules per character), dark on light.
fn qr_code(data: &str) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_qr_code() {
        let qr = qr_code("https://microsoft.com/devicelogin").unwrap();
        assert!(qr.lines().count() > 10);
        assert!(qr.contains('▀') || qr.contains('▄'));
    }
}
