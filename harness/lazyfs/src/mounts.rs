//! Mounting and unmounting FUSE by hand (the `mount` syscall as root, no
//! libfuse or `fusermount3`), finding lazy filesystems in the mount table,
//! and cleaning up the ones whose process is gone.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

/// The filesystem type in the mount table: `fuse` with subtype `lazyfs`.
pub const FS_TYPE: &str = "fuse.lazyfs";

const DEV_FUSE: &str = "/dev/fuse";

/// Whether this process can mount a lazy filesystem: `/dev/fuse` exists and
/// opens for reading and writing, and the process is root. The error says
/// what is missing.
pub fn check_available() -> Result<(), String> {
    if !Path::new(DEV_FUSE).exists() {
        return Err(format!(
            "{DEV_FUSE} is missing: the kernel's FUSE module is not loaded (`modprobe fuse`), \
             or this container was started without the device (`--device /dev/fuse`)"
        ));
    }
    if let Err(e) = OpenOptions::new().read(true).write(true).open(DEV_FUSE) {
        return Err(format!(
            "cannot open {DEV_FUSE}: {e} (the lazy filesystem needs root and the FUSE device)"
        ));
    }
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Err(format!(
            "mounting the lazy filesystem needs root (it calls mount(2) itself); this process runs as uid {euid}"
        ));
    }
    Ok(())
}

/// Opens `/dev/fuse` and mounts a FUSE filesystem of type [`FS_TYPE`] on
/// `mountpoint`, served through the returned descriptor.
pub(crate) fn mount_fuse(mountpoint: &Path) -> io::Result<File> {
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open(DEV_FUSE)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {DEV_FUSE}: {e}")))?;
    let root_mode = std::fs::metadata(mountpoint)?.mode();
    let data = format!(
        "fd={},rootmode={:o},user_id={},group_id={},default_permissions,allow_other",
        std::os::fd::AsRawFd::as_raw_fd(&dev),
        root_mode & libc::S_IFMT | root_mode & 0o7777,
        nix::unistd::getuid(),
        nix::unistd::getgid(),
    );
    nix::mount::mount(
        Some("lazyfs"),
        mountpoint,
        Some(FS_TYPE),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOATIME,
        Some(data.as_str()),
    )
    .map_err(|e| {
        let msg = format!("mount {FS_TYPE} on {}: {e}", mountpoint.display());
        io::Error::new(io::Error::from(e).kind(), msg)
    })?;
    Ok(dev)
}

/// Unmounts `mountpoint`. A busy mount (a process still has a file or its
/// working directory there) is detached instead: gone from the tree at
/// once, torn down by the kernel when the last user lets go. Returns
/// whether it was busy.
pub fn unmount(mountpoint: &Path) -> io::Result<bool> {
    match nix::mount::umount2(mountpoint, MntFlags::empty()) {
        Ok(()) => Ok(false),
        Err(Errno::EBUSY) => {
            nix::mount::umount2(mountpoint, MntFlags::MNT_DETACH)
                .map_err(|e| io::Error::other(format!("detach {}: {e}", mountpoint.display())))?;
            Ok(true)
        }
        Err(e) => Err(io::Error::other(format!(
            "unmount {}: {e}",
            mountpoint.display()
        ))),
    }
}

/// Mount points of every lazy filesystem in this mount namespace.
pub fn lazyfs_mounts() -> io::Result<Vec<PathBuf>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(table.lines().filter_map(parse_lazyfs_line).collect())
}

/// The mount point of a mountinfo line if it is a lazy filesystem's.
fn parse_lazyfs_line(line: &str) -> Option<PathBuf> {
    let (left, right) = line.split_once(" - ")?;
    if right.split(' ').next()? != FS_TYPE {
        return None;
    }
    Some(PathBuf::from(unescape(left.split(' ').nth(4)?)))
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a mounted lazy filesystem's process is gone (its mount point
/// answers "transport endpoint is not connected").
fn is_stale(mountpoint: &Path) -> bool {
    matches!(std::fs::metadata(mountpoint), Err(e) if e.raw_os_error() == Some(libc::ENOTCONN))
}

/// Detaches every lazy filesystem mounted at or under `dir` whose process
/// is gone, and returns their mount points. Live ones are left alone.
pub fn clean_stale_mounts(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut cleaned = Vec::new();
    for m in lazyfs_mounts()? {
        if m.starts_with(dir) && is_stale(&m) {
            nix::mount::umount2(&m, MntFlags::MNT_DETACH)
                .map_err(|e| io::Error::other(format!("detach {}: {e}", m.display())))?;
            cleaned.push(m);
        }
    }
    Ok(cleaned)
}

/// Detaches every lazy filesystem mounted at or under `dir`, live or not:
/// for a harness cleaning up after itself. Processes still using them get
/// errors from then on.
pub fn detach_all_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut detached = Vec::new();
    // Deepest first: a mount under another must go before it.
    let mut mounts: Vec<PathBuf> = lazyfs_mounts()?
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for m in mounts {
        match nix::mount::umount2(&m, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => detached.push(m),
            Err(e) => return Err(io::Error::other(format!("detach {}: {e}", m.display()))),
        }
    }
    Ok(detached)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let l =
            "36 35 0:52 / /tmp/a\\040b rw,nosuid,nodev,noatime - fuse.lazyfs lazyfs rw,user_id=0";
        assert_eq!(parse_lazyfs_line(l), Some(PathBuf::from("/tmp/a b")));
        let l = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw";
        assert_eq!(parse_lazyfs_line(l), None);
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("tail\\04"), "tail\\04");
    }
}
