//! Reading local files (certificates, keys, CA bundles) safely: regular files only, and never more than a limit.

use std::io::Read;

/// Reads the regular file at `path`, refusing one larger than `limit` bytes.
///
/// The type is checked before the file is opened, so a FIFO never blocks and a device such as `/dev/zero` is
/// never read: anything but a regular file is [`InvalidInput`](std::io::ErrorKind::InvalidInput). A file larger
/// than `limit` is [`InvalidData`](std::io::ErrorKind::InvalidData), found without reading it whole.
pub(crate) fn read_bounded(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut data = Vec::new();
    // One byte more than the limit tells "exactly at the limit" from "larger" (the file may also have grown
    // since it was checked).
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut data)?;
    if u64::try_from(data.len()).map_or(true, |len| len > limit) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the limit of {limit} bytes"),
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use std::io::ErrorKind;

    #[test]
    fn regular_files_only_and_never_more_than_the_limit() {
        let dir = std::env::temp_dir().join(format!("idcore-fs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_bounded(&file, 5).unwrap(), b"12345");
        let e = read_bounded(&file, 4).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData);
        assert!(e.to_string().contains("limit of 4 bytes"), "{e}");
        assert_eq!(read_bounded(&dir, 5).unwrap_err().kind(), ErrorKind::InvalidInput);
        #[cfg(unix)]
        {
            // Neither blocks nor reads forever.
            let fifo = dir.join("fifo");
            assert!(
                std::process::Command::new("mkfifo")
                    .arg(&fifo)
                    .status()
                    .unwrap()
                    .success()
            );
            assert_eq!(
                read_bounded(&fifo, 5).unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
            let zero = std::path::Path::new("/dev/zero");
            assert_eq!(read_bounded(zero, 5).unwrap_err().kind(), ErrorKind::InvalidInput);
        }
        assert_eq!(
            read_bounded(&dir.join("missing"), 5).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
