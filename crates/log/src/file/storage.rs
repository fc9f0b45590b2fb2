//! The file operations the log uses, behind a small trait so tests can swap the disk for an
//! in-memory one that loses unsynced data at a simulated crash (`memfs`, tests only).
//!
//! The contract is POSIX's: bytes written to a file are durable once [`StorageFile::sync_data`]
//! returns; a directory entry (a created, renamed or removed file) is durable once
//! [`Storage::sync_dir`] of its directory returns. Nothing else is promised.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The file name (not valid UTF-8 names are skipped by `list`).
    pub(crate) name: String,
    /// Whether it is a directory.
    pub(crate) is_dir: bool,
}

/// What the log does to directories and files.
pub(crate) trait Storage: Send + Sync + fmt::Debug + 'static {
    /// Creates one directory; fails with `AlreadyExists` if it is there.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// The entries of a directory, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<Entry>>;
    /// Creates a file for reading and appending; `replace` truncates an existing one, otherwise
    /// an existing file is an error.
    fn create(&self, path: &Path, replace: bool) -> io::Result<Box<dyn StorageFile>>;
    /// Opens an existing file for reading, and for appending when `write`.
    fn open(&self, path: &Path, write: bool) -> io::Result<Box<dyn StorageFile>>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything under it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Renames a file or directory, replacing `to` if it is a file.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if missing) until the guard drops; fails
    /// with `WouldBlock` when another holder has it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>>;
}

/// An open file.
pub(crate) trait StorageFile: Send + Sync + fmt::Debug {
    /// The current length.
    fn len(&self) -> io::Result<u64>;
    /// Reads at `offset` into `buf`, returning how many bytes were read (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Appends all of `data` at the end of the file.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes the written bytes (and the length) durable: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
    /// Cuts the file to `len` bytes; the caller syncs.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

/// Held while a directory is locked.
pub(crate) trait StorageLock: Send + Sync + fmt::Debug {}

/// Fills as much of `buf` as the file holds from `offset`, returning how much that was.
pub(crate) fn read_up_to(file: &dyn StorageFile, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The real disk, through `std::fs` (Unix: positional reads and directory fsync).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StdStorage;

impl Storage for StdStorage {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            entries.push(Entry {
                name,
                is_dir: entry.file_type()?.is_dir(),
            });
        }
        Ok(entries)
    }

    fn create(&self, path: &Path, replace: bool) -> io::Result<Box<dyn StorageFile>> {
        let mut options = OpenOptions::new();
        options.read(true).append(true);
        if replace {
            options.create(true);
        } else {
            options.create_new(true);
        }
        let file = options.open(path)?;
        if replace {
            file.set_len(0)?;
        }
        Ok(Box::new(StdFile(file)))
    }

    fn open(&self, path: &Path, write: bool) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).append(write).open(path)?;
        Ok(Box::new(StdFile(file)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(StdLock { _file: file })),
            Err(TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

#[derive(Debug)]
struct StdFile(File);

impl StorageFile for StdFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        // Opened with O_APPEND: every write lands at the current end, also after a truncate.
        self.0.write_all(data)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

/// An `flock` on the log directory's `LOCK` file, released when the file closes.
#[derive(Debug)]
struct StdLock {
    _file: File,
}

impl StorageLock for StdLock {}
