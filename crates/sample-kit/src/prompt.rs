//! The device-code prompt: the service's message, the code shown prominently, a QR code of the page when it fits,
//! and a countdown while waiting; Ctrl-C stops cleanly.
//!
//! On a terminal the instructions come last, so that the page and the code stay on screen: the QR code is
//! drawn above them only when everything fits in the terminal's height.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use identity_core::{DeviceFlow, Error, TokenResult};

/// The user pressed Ctrl-C while the sample waited for the sign-in. Exit code 130, as for any interrupted
/// command.
#[derive(Debug, thiserror::Error)]
#[error("sign-in cancelled (Ctrl-C); nothing was cached")]
pub struct Cancelled;

/// How to sign in at the embedded emulator, shown only when a sign-in starts.
static SIGN_IN_NOTICE: OnceLock<String> = OnceLock::new();

#[cfg_attr(
    not(feature = "embedded-emulator"),
    allow(dead_code, reason = "only the embedded emulator sets a sign-in notice")
)]
pub(crate) fn set_sign_in_notice(notice: String) {
    if !notice.is_empty() {
        let _ = SIGN_IN_NOTICE.set(notice);
    }
}

/// How to sign in at the embedded emulator, when running against it.
pub(crate) fn sign_in_notice() -> Option<&'static str> {
    SIGN_IN_NOTICE.get().map(String::as_str)
}

/// Shows the device-code instructions and waits for `sign_in` (the polling future) to finish, with a live
/// countdown when stdout is a terminal. Ctrl-C drops the polling future and returns [`Cancelled`].
pub async fn wait_for_sign_in(
    flow: &DeviceFlow,
    no_qr: bool,
    sign_in: impl Future<Output = Result<TokenResult, Error>>,
) -> anyhow::Result<TokenResult> {
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let notice = SIGN_IN_NOTICE.get().map(String::as_str);
    if terminal {
        let bold = crate::args::colour_on(&stdout);
        print!("{}", screen(flow, notice, !no_qr, bold, terminal_size()));
    } else {
        if let Some(notice) = notice {
            println!("{notice}");
        }
        println!("{}", flow.message);
    }
    // Tests and scripts read the message as soon as it is written.
    let _ = std::io::stdout().flush();

    let deadline = flow.expires_at();
    let countdown = async {
        if !terminal {
            return std::future::pending::<()>().await;
        }
        countdown(deadline).await
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

/// Columns and rows of the terminal, read again on each use (it may be resized while the sample waits); `None`
/// when the terminal does not say (a pseudo-terminal nobody sized).
fn terminal_size() -> Option<(usize, usize)> {
    terminal_size::terminal_size()
        .map(|(w, h)| (usize::from(w.0), usize::from(h.0)))
        .filter(|&(w, h)| w > 0 && h > 0)
}

/// What to assume of a terminal that does not give its size: the classic 80×24.
const DEFAULT_SIZE: (usize, usize) = (80, 24);

/// What is printed on a terminal of `size` (columns, rows) before the countdown: the emulator's notice, a QR
/// code if it fits, then the instructions and the code, last so that they stay in view.
fn screen(
    flow: &DeviceFlow,
    notice: Option<&str>,
    want_qr: bool,
    bold: bool,
    size: Option<(usize, usize)>,
) -> String {
    let mut text = String::new();
    if let Some(notice) = notice {
        text.push_str(notice);
        text.push('\n');
    }
    let (on, off) = if bold { ("\x1b[1m", "\x1b[0m") } else { ("", "") };
    let instructions = format!("{}\n\n    Code: {on}{}{off}\n", flow.message, flow.user_code);
    let qr = if want_qr {
        let header = format!("Or scan this to open {}:\n", flow.verification_uri);
        // The countdown takes the last row.
        let used = rows(&text, size) + rows(&header, size) + rows(&instructions, size) + 1;
        match fitting_qr_code(&flow.verification_uri, size, used) {
            Some(qr) => format!("{header}{qr}"),
            None => {
                tracing::debug!("no QR code: it does not fit in the terminal");
                String::new()
            }
        }
    } else {
        String::new()
    };
    text.push_str(&qr);
    text.push_str(&instructions);
    text
}

/// The number of terminal rows `text` takes once wrapped at the terminal's width.
fn rows(text: &str, size: Option<(usize, usize)>) -> usize {
    let columns = size.unwrap_or(DEFAULT_SIZE).0.max(1);
    text.lines()
        .map(|line| line.chars().count().div_ceil(columns).max(1))
        .sum()
}

/// The QR code with the standard quiet zone (4 modules) if it fits in the rows left, else with a 2-module
/// zone (which phones read as well in practice), else none.
fn fitting_qr_code(data: &str, size: Option<(usize, usize)>, used_rows: usize) -> Option<String> {
    let (columns, total_rows) = size.unwrap_or(DEFAULT_SIZE);
    [4, 2].into_iter().find_map(|quiet| {
        let qr = qr_code(data, quiet)?;
        let width = qr.lines().next().map_or(0, |l| l.chars().count());
        let height = qr.lines().count();
        (width < columns && height + used_rows <= total_rows).then_some(qr)
    })
}

/// A QR code drawn with half blocks (two modules a character): light modules (and the quiet zone) as blocks,
/// dark as the terminal's background, which works on dark terminals and, inverted, on light ones.
fn qr_code(data: &str, quiet: usize) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    let width = code.width();
    let colours = code.to_colors();
    let side = width + 2 * quiet;
    let light = |x: usize, y: usize| -> bool {
        if x < quiet || y < quiet || x >= quiet + width || y >= quiet + width {
            return true;
        }
        colours
            .get((y - quiet) * width + (x - quiet))
            .is_none_or(|c| *c == qrcode::Color::Light)
    };
    let mut text = String::new();
    for y in (0..side).step_by(2) {
        for x in 0..side {
            let top = light(x, y);
            // An odd side leaves the last row's bottom half as quiet zone.
            let bottom = y + 1 >= side || light(x, y + 1);
            text.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        text.push('\n');
    }
    Some(text)
}

/// How the countdown is drawn in a terminal this wide.
#[derive(Debug, PartialEq, Eq)]
enum Countdown {
    /// Redrawn in place, with the words.
    Full,
    /// Redrawn in place, just the time.
    Short,
    /// Too narrow to redraw in place: a plain line every minute.
    Lines,
}

fn countdown_style(columns: Option<usize>) -> Countdown {
    let width = |text: &str| text.chars().count();
    // Strictly narrower than the terminal: a line that fills it would wrap, and `\r` would then redraw on a
    // new line each time.
    match columns.unwrap_or(DEFAULT_SIZE.0) {
        c if c > width("⠋ Waiting for you to sign in… 00:00 left ") => Countdown::Full,
        c if c > width("⠋ 00:00 left ") => Countdown::Short,
        _ => Countdown::Lines,
    }
}

/// Draws the time left until `deadline` on stderr, forever (the caller stops it).
async fn countdown(deadline: Instant) {
    let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut tick = tokio::time::interval(Duration::from_millis(125));
    let mut last_minute_said = None;
    for frame in frames.iter().cycle() {
        tick.tick().await;
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        let (minutes, seconds) = (left / 60, left % 60);
        match countdown_style(terminal_size().map(|(c, _)| c)) {
            Countdown::Full => {
                eprint!("\r\x1b[2K{frame} Waiting for you to sign in… {minutes:02}:{seconds:02} left ")
            }
            Countdown::Short => eprint!("\r\x1b[2K{frame} {minutes:02}:{seconds:02} left "),
            Countdown::Lines => {
                if last_minute_said != Some(minutes) {
                    last_minute_said = Some(minutes);
                    eprintln!("\r\x1b[2KWaiting: {}", minutes_left(left));
                }
            }
        }
    }
}

fn minutes_left(seconds: u64) -> String {
    match seconds.div_ceil(60) {
        1 => "1 min left".into(),
        n => format!("{n} min left"),
    }
}

fn unreachable_countdown() -> anyhow::Result<TokenResult> {
    Err(anyhow::anyhow!("the countdown stopped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_qr_code_with_half_blocks() {
        let qr = qr_code("https://microsoft.com/devicelogin", 4).unwrap();
        // Version 3: 29 modules and two quiet zones of 4, two modules a row.
        assert_eq!(qr.lines().count(), 19);
        assert!(qr.lines().all(|l| l.chars().count() == 37));
        assert!(qr.contains('▀') || qr.contains('▄'));
        assert_eq!(
            qr_code("https://microsoft.com/devicelogin", 2)
                .unwrap()
                .lines()
                .count(),
            17
        );
    }

    #[test]
    fn the_qr_code_is_left_out_when_it_does_not_fit() {
        let url = "https://microsoft.com/devicelogin";
        assert!(fitting_qr_code(url, Some((80, 50)), 5).is_some_and(|q| q.lines().count() == 19));
        assert!(fitting_qr_code(url, Some((80, 24)), 6).is_some_and(|q| q.lines().count() == 17));
        assert!(fitting_qr_code(url, Some((80, 24)), 8).is_none());
        assert!(fitting_qr_code(url, Some((30, 50)), 5).is_none());
        assert!(fitting_qr_code(url, None, 6).is_some_and(|q| q.lines().count() == 17));
    }

    #[test]
    fn the_countdown_fits_the_width() {
        assert_eq!(countdown_style(Some(80)), Countdown::Full);
        assert_eq!(countdown_style(Some(30)), Countdown::Short);
        assert_eq!(countdown_style(Some(12)), Countdown::Lines);
        assert_eq!(minutes_left(61), "2 min left");
        assert_eq!(minutes_left(60), "1 min left");
    }
}
