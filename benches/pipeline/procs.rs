//! Facts about processes read from `/proc`: resident memory, a parent, and which process
//! listens on a TCP port (to find the nats-server this pipeline uses among several).

/// A `/proc/<pid>/status` field in kB (VmRSS, VmHWM…) as MiB; 0 when unreadable.
pub fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The parent of a process.
pub fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After "pid (comm) ": state, then ppid.
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

/// The process listening on 127.0.0.1:`port` or 0.0.0.0:`port` (IPv4), from the socket's
/// inode in `/proc/net/tcp` and the process holding it; None when it cannot be seen.
pub fn listening_pid(port: u16) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let wanted = format!(":{port:04X}");
    let inode = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // local_address is field 1, st field 3 (0A = LISTEN), inode field 9.
        (fields.get(1)?.ends_with(&wanted) && *fields.get(3)? == "0A")
            .then(|| fields.get(9).map(|inode| inode.to_string()))
            .flatten()
    })?;
    let socket = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|target| target.to_str() == Some(&socket))
                })
                .then_some(pid)
        })
}
