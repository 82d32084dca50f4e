//! Bounded reads of files named in the configuration: a stray path (a FIFO, a device, a multi-gigabyte log)
//! must give a clear error, never block or exhaust memory.

use std::io::{self, Read};
use std::path::Path;

/// Reads a regular file of at most `limit` bytes.
///
/// Refuses anything that is not a regular file (FIFO, device, directory, socket) with
/// [`io::ErrorKind::InvalidInput`] *before* opening it, so a FIFO never blocks the caller, and a file larger
/// than `limit` with [`io::ErrorKind::InvalidData`], naming the limit. Symbolic links are followed: the target
/// must be a regular file.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a directory, FIFO, socket or device)",
        ));
    }
    let file = std::fs::File::open(path)?;
    // The file may have been swapped between the check and the open: check what was opened.
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut content = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut content)?;
    if content.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than the limit of {limit} bytes"),
        ));
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("idcore-fs-{name}-{}", uuid::Uuid::new_v4()))
    }

    #[test]
    fn reads_a_file_within_the_limit() {
        let path = temp_path("ok");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap(), b"0123456789");
        let err = read_bounded(&path, 9).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("9 bytes"), "{err}");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn refuses_a_directory_and_a_missing_file() {
        let err = read_bounded(&std::env::temp_dir(), 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = read_bounded(Path::new("/nonexistent/idcore"), 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_fifo_without_blocking() {
        let path = temp_path("fifo");
        let status = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(status.success());
        // Opening a FIFO for reading with no writer would block forever: the check must come first.
        let err = read_bounded(&path, 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        std::fs::remove_file(path).unwrap();
    }
}
