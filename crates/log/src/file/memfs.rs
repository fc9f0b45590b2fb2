//! An in-memory [`Storage`] that models what survives a power loss (tests only).
//!
//! Each file keeps its current bytes and the bytes as of its last `sync_data`; each directory
//! keeps its current entries and the entries as of its last `sync_dir`. [`MemStorage::crash`]
//! simulates a power loss, adversarially within what POSIX allows:
//!
//! - synced bytes always survive;
//! - of the bytes written since the last sync, a random prefix survives (possibly none, possibly
//!   all), sometimes followed by garbage or zeros: a torn write;
//! - an unsynced truncation may be undone;
//! - every directory entry that differs from its synced state (a created, renamed or removed
//!   file or directory) independently keeps either its old or its new state.
//!
//! After a crash, handles opened before it fail and locks are released, as for a new process.
//! [`MemStorage::fail_sync_after`] makes a later sync fail, to produce unacknowledged writes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::storage::{Entry, Storage, StorageFile, StorageLock};

/// A small deterministic generator (SplitMix64), so a failing case replays from its seed.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    pub(crate) fn up_to(&mut self, max: usize) -> usize {
        (self.next_u64() % (max as u64 + 1)) as usize
    }

    pub(crate) fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// The in-memory disk; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemStorage {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    generation: u64,
    next_id: u64,
    nodes: HashMap<u64, Node>,
    locks: HashSet<PathBuf>,
    fail_sync_in: Option<u32>,
}

const ROOT: u64 = 0;

impl Default for State {
    fn default() -> State {
        let root = Node::Dir {
            children: BTreeMap::new(),
            durable: BTreeMap::new(),
        };
        State {
            generation: 0,
            next_id: 1,
            nodes: HashMap::from([(ROOT, root)]),
            locks: HashSet::new(),
            fail_sync_in: None,
        }
    }
}

#[derive(Debug)]
enum Node {
    Dir {
        children: BTreeMap<String, u64>,
        durable: BTreeMap<String, u64>,
    },
    File {
        data: Vec<u8>,
        synced: Vec<u8>,
    },
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

fn names(path: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name.to_string_lossy().into_owned()),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

impl State {
    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let mut id = ROOT;
        for name in names(path) {
            match self.nodes.get(&id) {
                Some(Node::Dir { children, .. }) => {
                    id = *children.get(&name).ok_or_else(|| not_found(path))?;
                }
                _ => return Err(not_found(path)),
            }
        }
        Ok(id)
    }

    /// The directory holding `path` and the last name of `path`.
    fn parent(&self, path: &Path) -> io::Result<(u64, String)> {
        let mut all = names(path);
        let name = all
            .pop()
            .ok_or_else(|| io::Error::other("the root has no parent"))?;
        let parent: PathBuf = all.iter().collect();
        let id = self.lookup(&parent)?;
        match self.nodes.get(&id) {
            Some(Node::Dir { .. }) => Ok((id, name)),
            _ => Err(not_found(&parent)),
        }
    }

    fn children(&mut self, dir: u64) -> &mut BTreeMap<String, u64> {
        match self.nodes.get_mut(&dir) {
            Some(Node::Dir { children, .. }) => children,
            // `parent` only returns directories, and nodes are never removed.
            _ => unreachable!("node {dir} is not a directory"),
        }
    }

    fn new_node(&mut self, node: Node) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.nodes.insert(id, node);
        id
    }

    fn sync_fault(&mut self) -> io::Result<()> {
        match self.fail_sync_in {
            Some(0) => {
                self.fail_sync_in = None;
                Err(io::Error::other("injected sync failure"))
            }
            Some(n) => {
                self.fail_sync_in = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl MemStorage {
    /// Simulates a power loss (see the module docs).
    pub(crate) fn crash(&self, rng: &mut Rng) {
        let mut state = self.state.lock();
        state.generation += 1;
        state.locks.clear();
        state.fail_sync_in = None;
        let mut ids: Vec<u64> = state.nodes.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(node) = state.nodes.get_mut(&id) else {
                continue;
            };
            match node {
                Node::Dir { children, durable } => {
                    let mut names: Vec<String> = children.keys().cloned().collect();
                    names.extend(durable.keys().cloned());
                    names.sort();
                    names.dedup();
                    let mut after = BTreeMap::new();
                    for name in names {
                        let (new, old) = (children.get(&name), durable.get(&name));
                        let kept = if new == old || rng.coin() { new } else { old };
                        if let Some(&kept) = kept {
                            after.insert(name, kept);
                        }
                    }
                    *durable = after.clone();
                    *children = after;
                }
                Node::File { data, synced } => {
                    if data == synced {
                        continue;
                    }
                    let common = data
                        .iter()
                        .zip(synced.iter())
                        .take_while(|(a, b)| a == b)
                        .count();
                    let mut after = if common < synced.len() && rng.coin() {
                        synced.clone() // an unsynced truncation undone
                    } else {
                        let keep = common + rng.up_to(data.len() - common);
                        data[..keep].to_vec()
                    };
                    if rng.coin() {
                        let zeros = rng.coin();
                        for _ in 0..1 + rng.up_to(40) {
                            after.push(if zeros { 0 } else { rng.next_u64() as u8 });
                        }
                    }
                    *synced = after.clone();
                    *data = after;
                }
            }
        }
    }

    /// Makes the sync after `n` more successful ones fail (once).
    pub(crate) fn fail_sync_after(&self, n: u32) {
        self.state.lock().fail_sync_in = Some(n);
    }

    /// Cancels [`MemStorage::fail_sync_after`].
    pub(crate) fn disarm(&self) {
        self.state.lock().fail_sync_in = None;
    }

    /// Changes a file as if on disk (durably), for tests that plant damage.
    pub(crate) fn modify(&self, path: &Path, change: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let mut state = self.state.lock();
        let id = state.lookup(path)?;
        match state.nodes.get_mut(&id) {
            Some(Node::File { data, synced }) => {
                change(data);
                *synced = data.clone();
                Ok(())
            }
            _ => Err(not_found(path)),
        }
    }

    /// The current bytes of a file.
    pub(crate) fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state.lock();
        let id = state.lookup(path)?;
        match state.nodes.get(&id) {
            Some(Node::File { data, .. }) => Ok(data.clone()),
            _ => Err(not_found(path)),
        }
    }
}

impl Storage for MemStorage {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let (parent, name) = state.parent(path)?;
        if state.children(parent).contains_key(&name) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let id = state.new_node(Node::Dir {
            children: BTreeMap::new(),
            durable: BTreeMap::new(),
        });
        state.children(parent).insert(name, id);
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        let state = self.state.lock();
        let id = state.lookup(dir)?;
        let Some(Node::Dir { children, .. }) = state.nodes.get(&id) else {
            return Err(io::Error::other("not a directory"));
        };
        Ok(children
            .iter()
            .map(|(name, id)| Entry {
                name: name.clone(),
                is_dir: matches!(state.nodes.get(id), Some(Node::Dir { .. })),
            })
            .collect())
    }

    fn create(&self, path: &Path, replace: bool) -> io::Result<Box<dyn StorageFile>> {
        let mut state = self.state.lock();
        let (parent, name) = state.parent(path)?;
        let id = match state.children(parent).get(&name).copied() {
            Some(id) if replace => match state.nodes.get_mut(&id) {
                Some(Node::File { data, .. }) => {
                    data.clear();
                    id
                }
                _ => return Err(io::Error::other("a directory is in the way")),
            },
            Some(_) => return Err(io::ErrorKind::AlreadyExists.into()),
            None => {
                let id = state.new_node(Node::File {
                    data: Vec::new(),
                    synced: Vec::new(),
                });
                state.children(parent).insert(name, id);
                id
            }
        };
        let generation = state.generation;
        Ok(Box::new(MemFile {
            state: self.state.clone(),
            id,
            generation,
            write: true,
        }))
    }

    fn open(&self, path: &Path, write: bool) -> io::Result<Box<dyn StorageFile>> {
        let state = self.state.lock();
        let id = state.lookup(path)?;
        if !matches!(state.nodes.get(&id), Some(Node::File { .. })) {
            return Err(io::Error::other("not a file"));
        }
        let generation = state.generation;
        Ok(Box::new(MemFile {
            state: self.state.clone(),
            id,
            generation,
            write,
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let (parent, name) = state.parent(path)?;
        state
            .children(parent)
            .remove(&name)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let (from_dir, from_name) = state.parent(from)?;
        let (to_dir, to_name) = state.parent(to)?;
        let id = state
            .children(from_dir)
            .remove(&from_name)
            .ok_or_else(|| not_found(from))?;
        state.children(to_dir).insert(to_name, id);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.sync_fault()?;
        let id = state.lookup(dir)?;
        match state.nodes.get_mut(&id) {
            Some(Node::Dir { children, durable }) => {
                *durable = children.clone();
                Ok(())
            }
            _ => Err(io::Error::other("not a directory")),
        }
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        let mut state = self.state.lock();
        if !state.locks.insert(path.to_path_buf()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let generation = state.generation;
        Ok(Box::new(MemLock {
            state: self.state.clone(),
            path: path.to_path_buf(),
            generation,
        }))
    }
}

#[derive(Debug)]
struct MemFile {
    state: Arc<Mutex<State>>,
    id: u64,
    generation: u64,
    write: bool,
}

impl MemFile {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut State, &mut Vec<u8>, &mut Vec<u8>) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut state = self.state.lock();
        if state.generation != self.generation {
            return Err(io::Error::other("handle from before a simulated crash"));
        }
        // Take the node out so `f` can also touch the rest of the state.
        let Some(Node::File {
            mut data,
            mut synced,
        }) = state.nodes.remove(&self.id)
        else {
            return Err(io::Error::other("not a file"));
        };
        let result = f(&mut state, &mut data, &mut synced);
        state.nodes.insert(self.id, Node::File { data, synced });
        result
    }
}

impl StorageFile for MemFile {
    fn len(&self) -> io::Result<u64> {
        self.with(|_, data, _| Ok(data.len() as u64))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.with(|_, data, _| {
            let start = (offset as usize).min(data.len());
            let n = buf.len().min(data.len() - start);
            buf[..n].copy_from_slice(&data[start..start + n]);
            Ok(n)
        })
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.write {
            return Err(io::Error::other("file opened read-only"));
        }
        self.with(|_, data, _| {
            data.extend_from_slice(bytes);
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with(|state, data, synced| {
            state.sync_fault()?;
            synced.clone_from(data);
            Ok(())
        })
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.with(|_, data, _| {
            data.truncate(len as usize);
            Ok(())
        })
    }
}

#[derive(Debug)]
struct MemLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    generation: u64,
}

impl StorageLock for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        let mut state = self.state.lock();
        if state.generation == self.generation {
            state.locks.remove(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn synced_bytes_survive_and_unsynced_ones_tear_to_a_prefix() {
        for seed in 0..200 {
            let fs = MemStorage::default();
            fs.create_dir(&p("/d")).unwrap();
            fs.sync_dir(&p("/")).unwrap();
            let mut f = fs.create(&p("/d/f"), false).unwrap();
            fs.sync_dir(&p("/d")).unwrap();
            f.append(b"durable").unwrap();
            f.sync_data().unwrap();
            f.append(b"-pending").unwrap();
            fs.crash(&mut Rng::new(seed));
            let after = fs.read(&p("/d/f")).unwrap();
            assert!(after.starts_with(b"durable"), "seed {seed}: {after:?}");
            let tail = &after[7..];
            let torn = b"-pending"
                .iter()
                .zip(tail)
                .take_while(|(a, b)| a == b)
                .count();
            // Whatever follows the surviving prefix is garbage the crash added.
            assert!(
                torn <= 8 && tail.len() <= torn + 41,
                "seed {seed}: {after:?}"
            );
            assert!(f.append(b"x").is_err(), "old handles die with the crash");
        }
    }

    #[test]
    fn unsynced_entries_may_vanish_synced_ones_stay() {
        let mut vanished = false;
        for seed in 0..50 {
            let fs = MemStorage::default();
            fs.create_dir(&p("/d")).unwrap();
            fs.sync_dir(&p("/")).unwrap();
            fs.create(&p("/d/kept"), false).unwrap();
            fs.sync_dir(&p("/d")).unwrap();
            fs.create(&p("/d/new"), false).unwrap();
            fs.crash(&mut Rng::new(seed));
            let names: Vec<String> = fs
                .list(&p("/d"))
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect();
            assert!(names.contains(&"kept".to_string()));
            vanished |= !names.contains(&"new".to_string());
        }
        assert!(vanished, "some crash should undo the unsynced create");
    }

    #[test]
    fn sync_failures_are_injected_once() {
        let fs = MemStorage::default();
        let mut f = fs.create(&p("/f"), false).unwrap();
        f.append(b"a").unwrap();
        fs.fail_sync_after(1);
        assert!(f.sync_data().is_ok());
        assert!(f.sync_data().is_err());
        assert!(f.sync_data().is_ok());
    }

    #[test]
    fn locks_exclude_until_dropped_or_crash() {
        let fs = MemStorage::default();
        let guard = fs.lock(&p("/LOCK")).unwrap();
        assert_eq!(
            fs.lock(&p("/LOCK")).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        drop(guard);
        let _again = fs.lock(&p("/LOCK")).unwrap();
        fs.crash(&mut Rng::new(1));
        assert!(fs.lock(&p("/LOCK")).is_ok());
    }
}
