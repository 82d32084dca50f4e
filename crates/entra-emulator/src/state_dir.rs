//! The state directory: where the CA, the token-signing key and the directory are kept between runs
//! (or a temporary directory that only holds the CA certificate for clients to trust).

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// File names inside the state directory.
pub(crate) const CA_CERT: &str = "ca.pem";
pub(crate) const CA_KEY: &str = "ca-key.pem";
pub(crate) const SIGNING_KEY: &str = "token-signing-key.pem";
pub(crate) const SIGNING_CERT: &str = "token-signing-cert.pem";
pub(crate) const DIRECTORY: &str = "directory.json";
/// PFX passwords and thumbprints of the certificates whose private keys the emulator holds.
pub(crate) const HELD_CERTIFICATES: &str = "certificates.json";
/// Locked (never written) while an emulator loads or creates the state.
pub(crate) const LOCK: &str = ".lock";
/// Where a bare `--describe` writes the self-description.
pub(crate) const DESCRIPTION: &str = "emulator.json";

#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    /// A temporary directory we created (removed when the emulator stops) rather than a state dir.
    temporary: bool,
}

impl Store {
    /// Uses (and creates, private to the owner) a persistent state directory. Safe when several emulators
    /// create it at once: an existing directory is fine, and nothing is chmod-ed after the fact.
    pub fn persistent(dir: PathBuf) -> io::Result<Self> {
        private_dir_builder(true).create(&dir)?;
        Ok(Self {
            dir,
            temporary: false,
        })
    }

    /// Creates a fresh private temporary directory.
    pub fn temporary() -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "entra-emulator-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        private_dir_builder(false).create(&dir)?;
        Ok(Self { dir, temporary: true })
    }

    /// Where run-time changes of the directory are saved (nowhere for a temporary store).
    pub fn directory_file(&self) -> DirectoryFile {
        DirectoryFile(self.is_persistent().then(|| self.path(DIRECTORY)))
    }

    /// Waits for the exclusive lock of a persistent state directory (`None` for a temporary one). Emulators
    /// hold it while they load or create the state, so those starting at once never see each other's
    /// half-created state: the first creates the CA and keys, the others load them.
    pub async fn lock(&self) -> io::Result<Option<StateLock>> {
        if self.temporary {
            return Ok(None);
        }
        let path = self.path(LOCK);
        // flock blocks the thread: wait on the blocking pool, not on the runtime.
        tokio::task::spawn_blocking(move || StateLock::acquire(&path))
            .await
            .map_err(io::Error::other)?
            .map(Some)
    }

    pub fn is_persistent(&self) -> bool {
        !self.temporary
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads a file of the store if it exists (always `None` for a temporary store).
    pub fn read(&self, name: &str) -> io::Result<Option<String>> {
        if self.temporary {
            return Ok(None);
        }
        match fs::read_to_string(self.path(name)) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes a file readable by the owner only.
    pub fn write_private(&self, name: &str, contents: &str) -> io::Result<()> {
        write_atomic(&self.path(name), contents.as_bytes(), true)
    }

    /// Writes a binary file readable by the owner only.
    pub fn write_private_bytes(&self, name: &str, contents: &[u8]) -> io::Result<()> {
        write_atomic(&self.path(name), contents, true)
    }

    /// Writes a file readable by everyone (the CA certificate).
    pub fn write_public(&self, name: &str, contents: &str) -> io::Result<()> {
        write_atomic(&self.path(name), contents.as_bytes(), false)
    }

    /// Removes the directory if it is a temporary one.
    pub fn cleanup(&self) {
        if self.temporary {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `directory.json` of a state directory, for the changes made while the emulator runs (an uploaded
/// certificate, an administrator's consent); `None` without a state directory.
#[derive(Clone, Debug)]
pub(crate) struct DirectoryFile(Option<PathBuf>);

impl DirectoryFile {
    /// Saves `directory` (secrets included: mode 0600), atomically; nothing without a state directory.
    pub fn save(&self, directory: &impl Serialize) -> io::Result<()> {
        let Some(path) = &self.0 else {
            return Ok(());
        };
        let json = serde_json::to_string_pretty(directory).map_err(io::Error::other)?;
        write_atomic(path, json.as_bytes(), true)
    }
}

/// The exclusive `flock` of a state directory, released when dropped (or when the process dies, so a crashed
/// emulator never leaves the directory locked).
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: fs::File,
}

impl StateLock {
    fn acquire(path: &Path) -> io::Result<Self> {
        let mut options = fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            // Only a regular file of ours: never a symlink planted in its place.
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        let file = options.open(path)?;
        file.lock()?;
        Ok(Self { _file: file })
    }
}

/// Creates directories private to the owner (0700 on Unix) as they are created, so no chmod is needed.
fn private_dir_builder(recursive: bool) -> fs::DirBuilder {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(recursive);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
}

/// Writes `contents` to a temporary sibling and renames it over `path`; `private` files get mode 0600.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], private: bool) -> io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let result = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
