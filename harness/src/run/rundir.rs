//! The run directory: `out/<UTC timestamp>-<nemesis>/`, with `out/latest`
//! pointing at it, and what is left in it after the run.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::HarnessError;

/// Creates `out/<UTC timestamp>-<nemesis>/` and points `out/latest` at it.
pub fn create(out: &Path, nemesis: &str) -> Result<PathBuf, HarnessError> {
    std::fs::create_dir_all(out)
        .map_err(|e| HarnessError(format!("cannot create {}: {e}", out.display())))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let base = format!(
        "{}-{}",
        utc_timestamp(now.as_secs()),
        nemesis.replace([',', '/', ' '], "+")
    );
    // Another run started in the same second takes the next suffix; the
    // directory is claimed by creating it, so two runs never share one.
    let mut name = base.clone();
    let mut n = 1;
    let dir = loop {
        let dir = out.join(&name);
        match std::fs::create_dir(&dir) {
            Ok(()) => break dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                n += 1;
                name = format!("{base}.{n}");
            }
            Err(e) => {
                return Err(HarnessError(format!(
                    "cannot create {}: {e}",
                    dir.display()
                )));
            }
        }
    };
    let latest = out.join("latest");
    let _ = std::fs::remove_file(&latest);
    let _ = std::os::unix::fs::symlink(&name, &latest);
    Ok(dir)
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the Unix epoch.
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Removes the nodes' data directories (`dirs`); returns the bytes freed.
pub fn remove_data(dirs: &[PathBuf]) -> Result<u64, String> {
    let mut freed = 0;
    for dir in dirs {
        if !dir.exists() {
            continue;
        }
        freed += size(dir);
        std::fs::remove_dir_all(dir)
            .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    Ok(freed)
}

fn size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| size(&e.path()))
        .sum()
}

/// The command line that repeats this run: this program's arguments with
/// `--seed` set to `seed`, quoted for a POSIX shell.
pub fn reproduce_command(argv: &[String], seed: u64) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut skip = false;
    for (i, arg) in argv.iter().enumerate() {
        if skip {
            skip = false;
            continue;
        }
        if arg == "--seed" {
            skip = true;
            continue;
        }
        if arg.starts_with("--seed=") {
            continue;
        }
        out.push(if i == 0 {
            arg.clone()
        } else {
            shell_quote(arg)
        });
    }
    out.push("--seed".into());
    out.push(seed.to_string());
    out.join(" ")
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_started_together_get_their_own_directories() {
        let out = std::env::temp_dir().join(format!("rundir-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let dirs: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| create(&out, "all").unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let distinct: std::collections::BTreeSet<&PathBuf> = dirs.iter().collect();
        assert_eq!(distinct.len(), 8, "{dirs:?}");
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(utc_timestamp(0), "19700101T000000Z");
        // 2026-11-27 03:30:54 UTC
        assert_eq!(utc_timestamp(1_795_750_254), "20261127T033054Z");
        assert_eq!(utc_timestamp(951_782_400), "20000229T000000Z");
    }

    #[test]
    fn the_command_gets_the_seed_in_place_of_any_other() {
        let argv: Vec<String> = [
            "./harness",
            "run",
            "--seed",
            "5",
            "--nemesis",
            "kill,pause",
            "--seed=6",
            "--node-arg=--x y",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            reproduce_command(&argv, 42),
            "./harness run --nemesis kill,pause '--node-arg=--x y' --seed 42"
        );
    }

    #[test]
    fn removes_data_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("n1");
        std::fs::create_dir_all(a.join("wal")).unwrap();
        std::fs::write(a.join("wal/log"), vec![0u8; 1000]).unwrap();
        let freed = remove_data(&[a.clone(), dir.path().join("n2")]).unwrap();
        assert_eq!(freed, 1000);
        assert!(!a.exists());
    }
}
