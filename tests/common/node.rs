//! A real node for the test environment, started only when a test asks for it ([`node`]):
//! containerd (Debian's, with runc), a kubelet, kube-scheduler and kube-controller-manager
//! (v1.37.2, built by `make testenv`) joined to this test binary's kube-apiserver.
//!
//! Everything stays on loopback: there is no pod network (the CNI configuration has only the
//! `loopback` plugin, which makes the node Ready), so pods must use `hostNetwork: true`. The
//! kubelet listens on 127.0.0.1 and registers as node `localhost`, the name the API server
//! dials for logs (`--kubelet-preferred-address-types=Hostname`). Images cannot be pulled:
//! `hack/image.sh` builds the operator image and the sandbox ("pause") image with podman, and
//! they are imported into containerd here (`imagePullPolicy: Never`).
//!
//! Host state the node creates — processes (containerd, its shims, the containers), mounts
//! (the kubelet's and containerd's), cgroups (everything under the kubelet's own `cgroupRoot`,
//! `/ferry-node-<id>` in every hierarchy), `/var/log/containers` links and the kernel tunables
//! the kubelet sets — is undone when the test binary exits (an `atexit` handler), and by the
//! next start if a binary was killed before it could (each node writes `state.json`).
//!
//! Use [`env`] instead of `common::env()` in a binary that starts a node: the API server must
//! start with the flags the node needs (kubelet client certificate, ServiceAccount admission).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node as KubeNode;
use kube::Api;
use serde::{Deserialize, Serialize};

use super::{ApiServerOptions, TestEnv, bin, free_port, repo, spawn, suffix, wait_blocking, wait_for};

/// The node's name (and the host name the API server dials for `kubectl logs`).
pub const NODE_NAME: &str = "localhost";
/// The sandbox image `hack/image.sh pause` builds.
pub const PAUSE_IMAGE: &str = "ferry.test/pause:1";
/// The operator image `make image` builds (`hack/image.sh`).
pub const FERRY_IMAGE_REPOSITORY: &str = "ghcr.io/ferry-dev/ferry";

/// The operator image's tag: the crate version.
pub fn ferry_image_tag() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Kernel tunables the kubelet sets (it does unless `protectKernelDefaults`); put back at the end.
const KERNEL_TUNABLES: &[&str] = &[
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];

/// What teardown needs to know, also written to `state.json` for a later start to clean up
/// after a killed binary.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct HostState {
    /// The test binary's pid.
    pid: u32,
    /// Data folder (kubelet root, containerd root, logs).
    dir: PathBuf,
    /// Runtime folder (containerd state and socket): short, for socket paths.
    run: PathBuf,
    /// The kubelet's cgroupRoot, without the leading slash.
    cgroup: String,
    /// Whether /run/containerd existed before (containerd's shims put their sockets there).
    run_containerd_existed: bool,
    /// Whether /var/log/containers existed before (the kubelet links the pods' logs there).
    #[serde(default)]
    var_log_containers_existed: bool,
    /// Whether /var/lib/kubelet existed before (the kubelet's device manager puts its socket in
    /// /var/lib/kubelet/device-plugins whatever its root dir).
    #[serde(default)]
    var_lib_kubelet_existed: bool,
    /// Kernel tunables before the kubelet changed them.
    tunables: Vec<(String, String)>,
}

/// A running node.
pub struct Node {
    /// Node name.
    pub name: String,
    /// Data folder (logs: containerd.log, kubelet.log, scheduler.log, controller-manager.log).
    pub dir: PathBuf,
    /// containerd's socket.
    pub containerd_socket: PathBuf,
    /// How long the start took (images imported, node Ready).
    pub started_in: Duration,
}

/// The node's PKI: a CA the kubelet trusts for client certificates, and the API server's
/// client certificate signed by it (`--kubelet-client-certificate`).
struct NodePki {
    dir: PathBuf,
}

static PKI: OnceLock<NodePki> = OnceLock::new();

fn node_root() -> PathBuf {
    repo().join("target/ferry-node")
}

/// This binary's environment, with the API server flags a node needs. Call it instead of
/// `common::env()` in every test of a binary that uses [`node`].
pub fn env() -> &'static TestEnv {
    let pki = PKI.get_or_init(|| {
        cleanup_stale();
        let dir = node_root().join(format!("{}-{}", std::process::id(), suffix()));
        fs::create_dir_all(dir.join("pki")).expect("create the node folder");
        make_pki(&dir.join("pki"));
        let pki = dir.join("pki");
        let options = ApiServerOptions {
            extra_args: vec![
                format!(
                    "--kubelet-client-certificate={}",
                    pki.join("apiserver-kubelet-client.crt").display()
                ),
                format!(
                    "--kubelet-client-key={}",
                    pki.join("apiserver-kubelet-client.key").display()
                ),
                "--kubelet-preferred-address-types=Hostname".into(),
            ],
            service_account_admission: true,
        };
        assert!(
            super::set_apiserver_options(options),
            "the test environment started before common::node::env() could set the API server's flags"
        );
        NodePki { dir }
    });
    let env = super::env();
    assert!(pki.dir.exists());
    env
}

fn make_pki(dir: &Path) {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
    let (ca_cert, issuer) = super::test_ca("ferry-test-kubelet-client-ca");
    let key = KeyPair::generate().expect("client key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver-kubelet-client");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).expect("client certificate");
    fs::write(dir.join("kubelet-client-ca.crt"), ca_cert.pem()).expect("write CA");
    fs::write(dir.join("apiserver-kubelet-client.crt"), cert.pem()).expect("write cert");
    fs::write(dir.join("apiserver-kubelet-client.key"), key.serialize_pem()).expect("write key");
}

static NODE: OnceLock<Result<Node, String>> = OnceLock::new();
static HOST_STATE: Mutex<Option<(HostState, Vec<Child>)>> = Mutex::new(None);

/// Starts the node on first use (a few seconds once the images exist); later calls return it.
pub fn node() -> &'static Node {
    let env = env();
    let started = NODE.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        // As for the environment: the processes belong to a thread that lives as long as the
        // binary (PDEATHSIG), and teardown runs at exit.
        std::thread::Builder::new()
            .name("ferry-node".into())
            .spawn(move || match std::panic::catch_unwind(|| start(env)) {
                Ok(node) => {
                    let _ = tx.send(Ok(node));
                    loop {
                        std::thread::park();
                    }
                }
                Err(panic) => {
                    teardown_now();
                    let _ = tx.send(Err(panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".into())));
                }
            })
            .expect("spawn the node thread");
        rx.recv().unwrap_or_else(|_| Err("the node thread died".into()))
    });
    match started {
        Ok(node) => node,
        Err(why) => panic!("the node could not start: {why}"),
    }
}

extern "C" fn teardown_at_exit() {
    teardown_now();
}

/// Stops the node's processes and undoes its host state (idempotent).
fn teardown_now() {
    let taken = match HOST_STATE.lock() {
        Ok(mut guard) => guard.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    if let Some((state, mut children)) = taken {
        // kubelet, scheduler and controller-manager first (they would restart containers),
        // containerd last.
        let containerd = if children.is_empty() {
            None
        } else {
            Some(children.remove(0))
        };
        for child in &mut children {
            stop(child);
        }
        kill_cgroup_processes(&state.cgroup);
        kill_shims(&state.run);
        if let Some(mut containerd) = containerd {
            stop(&mut containerd);
        }
        undo_host_state(&state);
    }
}

fn stop(child: &mut Child) {
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The cgroup hierarchies mounted under /sys/fs/cgroup (v1 controllers, `systemd`, `unified`).
fn hierarchies() -> Vec<PathBuf> {
    // cgroup v2 alone: one hierarchy, the root (its subfolders are cgroups, not hierarchies).
    if Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
        return vec![PathBuf::from("/sys/fs/cgroup")];
    }
    let mut out: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("cgroup.procs").exists() && !p.is_symlink())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn cgroup_tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(entry.path());
                }
            }
        }
        out.push(dir);
    }
    out
}

/// SIGKILLs every process in the node's cgroups (the containers), until none is left.
fn kill_cgroup_processes(cgroup: &str) {
    for _ in 0..50 {
        let mut found = false;
        for h in hierarchies() {
            for dir in cgroup_tree(&h.join(cgroup)) {
                let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    found = true;
                    // SAFETY: killing a container process of our node.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
        if !found {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// containerd's shims of this node (found by the socket address in their command line).
fn shim_pids(run: &Path) -> Vec<i32> {
    let address = run.join("containerd.sock").display().to_string();
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else { return out };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("containerd-shim-runc-v2")) && args.iter().any(|a| a == &address) {
            out.push(pid);
        }
    }
    out
}

fn kill_shims(run: &Path) {
    for _ in 0..50 {
        let pids = shim_pids(run);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: a shim of our own containerd.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Mount points under `prefixes`, deepest first.
fn mounts_under(prefixes: &[&Path]) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| prefixes.iter().any(|prefix| p.starts_with(prefix)))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

fn undo_host_state(state: &HostState) {
    // Mounts: the kubelet's (its root dir, pod volumes), containerd's (rootfs, shm).
    for _ in 0..10 {
        let mounts = mounts_under(&[&state.dir, &state.run]);
        if mounts.is_empty() {
            break;
        }
        for m in mounts {
            if let Ok(c) = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()) {
                // SAFETY: unmounting a path of our own node.
                unsafe {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
    }
    // Cgroups, depth first, in every hierarchy.
    for h in hierarchies() {
        let root = h.join(&state.cgroup);
        if !root.exists() {
            continue;
        }
        let mut dirs = cgroup_tree(&root);
        dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for _ in 0..20 {
            let mut left = false;
            for d in &dirs {
                if d.exists() && fs::remove_dir(d).is_err() {
                    left = true;
                }
            }
            if !left {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // The kubelet's links to our pods' logs.
    let pod_logs = state.dir.join("pod-logs");
    if let Ok(entries) = fs::read_dir("/var/log/containers") {
        for entry in entries.flatten() {
            if fs::read_link(entry.path()).is_ok_and(|target| target.starts_with(&pod_logs)) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    if !state.var_log_containers_existed {
        // Only if empty: another node's kubelet may use it.
        let _ = fs::remove_dir("/var/log/containers");
    }
    // Kernel tunables.
    for (name, value) in &state.tunables {
        let path = Path::new("/proc/sys").join(name);
        if fs::read_to_string(&path).map(|v| v.trim() != value).unwrap_or(false) {
            let _ = fs::write(&path, value);
        }
    }
    let _ = fs::remove_dir_all(&state.run);
    if !state.run_containerd_existed && !other_process_running("containerd") {
        let _ = fs::remove_dir_all("/run/containerd");
    }
    if !state.var_lib_kubelet_existed && !other_process_running("kubelet") {
        let _ = fs::remove_dir_all("/var/lib/kubelet");
    }
    // Data (containerd's images and snapshots, the kubelet's root), logs kept for a failed run
    // only while the binary lives: the next start removes the folder.
    let _ = fs::remove_dir_all(state.dir.join("containerd"));
    let _ = fs::remove_dir_all(state.dir.join("kubelet"));
    let _ = fs::remove_file(state.dir.join("state.json"));
}

/// Whether a process whose program is `name` runs (another node's, or the machine's own).
fn other_process_running(name: &str) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        fs::read(e.path().join("cmdline"))
            .map(|c| {
                let first = c.split(|b| *b == 0).next().unwrap_or_default();
                let program = String::from_utf8_lossy(first);
                program == name || program.ends_with(&format!("/{name}"))
            })
            .unwrap_or(false)
    })
}

/// Cleans up after binaries that were killed before their teardown ran.
fn cleanup_stale() {
    let Ok(entries) = fs::read_dir(node_root()) else { return };
    for entry in entries.flatten() {
        let dir = entry.path();
        let pid: Option<i32> = entry
            .file_name()
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse().ok());
        // SAFETY: signal 0 only checks whether the process exists.
        let alive = pid.is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
        if alive {
            continue;
        }
        if let Some(state) = fs::read_to_string(dir.join("state.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<HostState>(&t).ok())
        {
            kill_cgroup_processes(&state.cgroup);
            kill_shims(&state.run);
            undo_host_state(&state);
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

fn write_file(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create folder");
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn run_checked(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    super::succeeded(&out, what)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var("PATH").ok().and_then(|path| {
        path.split(':')
            .chain(["/usr/sbin", "/sbin"])
            .map(|d| Path::new(d).join(program))
            .find(|p| {
                p.metadata()
                    .map(|m| m.permissions().mode() & 0o111 != 0)
                    .unwrap_or(false)
            })
    })
}

/// The images the node needs, built by `hack/image.sh` (`make image`, `make e2e`).
fn image_archives() -> (PathBuf, PathBuf) {
    let images = repo().join(".cache/images");
    let pause = images.join("pause.tar");
    let ferry = images.join(format!("ferry-{}.tar", ferry_image_tag()));
    for (path, how) in [(&pause, "hack/image.sh pause"), (&ferry, "make image")] {
        assert!(
            path.exists(),
            "{} is missing: run `{how}` (or `make e2e`)",
            path.display()
        );
    }
    (pause, ferry)
}

// The children are kept in HOST_STATE and waited for by the teardown at exit.
#[allow(clippy::zombie_processes)]
fn start(env: &'static TestEnv) -> Node {
    let started = Instant::now();
    for program in ["containerd", "containerd-shim-runc-v2", "runc", "ctr"] {
        assert!(
            which(program).is_some(),
            "{program} is missing: run `hack/host-packages.sh containerd runc containernetworking-plugins` (make e2e does)"
        );
    }
    let cni_bin = ["/usr/lib/cni", "/opt/cni/bin"]
        .into_iter()
        .map(PathBuf::from)
        .find(|d| d.join("loopback").exists())
        .expect("the CNI loopback plugin is missing: install containernetworking-plugins (make e2e does)");
    let (pause_tar, ferry_tar) = image_archives();
    let pki_dir = PKI.get().expect("node PKI").dir.clone();
    let dir = pki_dir;
    let id = dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("node folder name")
        .to_string();
    let run = PathBuf::from(format!("/run/ferry-node-{id}"));
    fs::create_dir_all(&run).expect("create the node's run folder");
    let cgroup = format!("ferry-node-{id}");
    let tunables = KERNEL_TUNABLES
        .iter()
        .filter_map(|t| {
            fs::read_to_string(Path::new("/proc/sys").join(t))
                .ok()
                .map(|v| (t.to_string(), v.trim().to_string()))
        })
        .collect();
    let state = HostState {
        pid: std::process::id(),
        dir: dir.clone(),
        run: run.clone(),
        cgroup: cgroup.clone(),
        run_containerd_existed: Path::new("/run/containerd").exists(),
        var_log_containers_existed: Path::new("/var/log/containers").exists(),
        var_lib_kubelet_existed: Path::new("/var/lib/kubelet").exists(),
        tunables,
    };
    write_file(
        &dir.join("state.json"),
        &serde_json::to_string_pretty(&state).expect("state"),
    );
    *HOST_STATE.lock().expect("host state") = Some((state, Vec::new()));
    // SAFETY: registering a plain extern "C" function.
    unsafe {
        libc::atexit(teardown_at_exit);
    }

    // The kubelet's cgroupRoot must exist in every hierarchy (cpuset: with cpus and mems).
    for h in hierarchies() {
        let path = h.join(&cgroup);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create cgroup {}: {e}", path.display()));
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = fs::read_to_string(h.join(file)) {
                let _ = fs::write(path.join(file), value.trim());
            }
        }
        // cgroup v2: hand the controllers on to the kubelet's cgroups.
        if let Ok(controllers) = fs::read_to_string(path.join("cgroup.controllers")) {
            let enable: Vec<String> = controllers.split_whitespace().map(|c| format!("+{c}")).collect();
            let _ = fs::write(path.join("cgroup.subtree_control"), enable.join(" "));
        }
    }

    // containerd.
    let socket = run.join("containerd.sock");
    let cni_conf = dir.join("cni");
    write_file(
        &cni_conf.join("10-loopback.conflist"),
        r#"{"cniVersion": "1.0.0", "name": "ferry-loopback", "plugins": [{"type": "loopback"}]}"#,
    );
    let config = dir.join("containerd.toml");
    write_file(
        &config,
        &format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # Root here may not lower oom_score_adj: without this every sandbox fails to start.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
"#,
            root = dir.join("containerd").display(),
            state = run.join("state").display(),
            socket = socket.display(),
            cni_bin = cni_bin.display(),
            cni_conf = cni_conf.display(),
        ),
    );
    let containerd = spawn(
        Command::new(which("containerd").expect("containerd"))
            .arg(format!("--config={}", config.display()))
            .arg("--log-level=warn"),
        &dir.join("containerd.log"),
    );
    {
        let mut guard = HOST_STATE.lock().expect("host state");
        if let Some((_, children)) = guard.as_mut() {
            children.push(containerd);
        }
    }
    let ctr = |args: &[&str]| -> Command {
        let mut cmd = Command::new(which("ctr").expect("ctr"));
        cmd.arg(format!("--address={}", socket.display()))
            .args(["--namespace", "k8s.io"])
            .args(args);
        cmd
    };
    wait_blocking("containerd to answer", Duration::from_secs(30), || {
        ctr(&["version"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| ())
    });
    for tar in [&pause_tar, &ferry_tar] {
        run_checked(
            &mut ctr(&["images", "import", &tar.display().to_string()]),
            &format!("ctr images import {}", tar.display()),
        );
    }
    let images = run_checked(&mut ctr(&["images", "ls", "-q"]), "ctr images ls");
    for wanted in [
        PAUSE_IMAGE.to_string(),
        format!("{FERRY_IMAGE_REPOSITORY}:{}", ferry_image_tag()),
    ] {
        assert!(
            images.lines().any(|l| l.trim().ends_with(&wanted)),
            "{wanted} not imported: {images}"
        );
    }

    // kubelet.
    let kubelet_port = free_port();
    let healthz_port = free_port();
    let kubelet_config = dir.join("kubelet.yaml");
    write_file(
        &kubelet_config,
        &format!(
            r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: {kubelet_port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz_port}
containerRuntimeEndpoint: unix://{socket}
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup}
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
podLogsDir: {pod_logs}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
  x509: {{clientCAFile: {client_ca}}}
authorization: {{mode: AlwaysAllow}}
resolvConf: /etc/resolv.conf
serializeImagePulls: false
evictionHard: {{memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusReportFrequency: 10s
fileCheckFrequency: 1h
syncFrequency: 5s
"#,
            socket = socket.display(),
            pod_logs = dir.join("pod-logs").display(),
            client_ca = dir.join("pki/kubelet-client-ca.crt").display(),
        ),
    );
    let kubelet = spawn(
        Command::new(bin("kubelet"))
            .arg(format!("--config={}", kubelet_config.display()))
            .arg(format!("--kubeconfig={}", env.kubeconfig.display()))
            .arg(format!("--root-dir={}", dir.join("kubelet").display()))
            .arg(format!("--cert-dir={}", dir.join("kubelet/pki").display()))
            .arg(format!("--hostname-override={NODE_NAME}"))
            .arg("--v=1"),
        &dir.join("kubelet.log"),
    );
    // The scheduler and the controller manager: the cluster's kubeconfig for everything, a
    // loopback port of their own, no leader election.
    let component = |name: &str| {
        let mut cmd = Command::new(bin(name));
        let kubeconfig = env.kubeconfig.display();
        cmd.arg(format!("--kubeconfig={kubeconfig}"))
            .arg(format!("--authentication-kubeconfig={kubeconfig}"))
            .arg(format!("--authorization-kubeconfig={kubeconfig}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={}", free_port()))
            .arg("--leader-elect=false");
        cmd
    };
    let scheduler = spawn(component("kube-scheduler").arg("--v=1"), &dir.join("scheduler.log"));
    let controller_manager = spawn(
        component("kube-controller-manager")
            .arg(format!("--root-ca-file={}", env.dir.join("ca.crt").display()))
            .arg(format!(
                "--service-account-private-key-file={}",
                env.dir.join("sa.key").display()
            ))
            .arg("--use-service-account-credentials=false")
            .arg("--node-monitor-period=2s")
            .arg("--v=1"),
        &dir.join("controller-manager.log"),
    );
    {
        let mut guard = HOST_STATE.lock().expect("host state");
        if let Some((_, children)) = guard.as_mut() {
            children.extend([kubelet, scheduler, controller_manager]);
        }
    }

    // Ready, and without the not-ready taint (the node lifecycle controller removes it).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir_for_logs = dir.clone();
    runtime.block_on(async {
        let client = env.client().await;
        let nodes: Api<KubeNode> = Api::all(client);
        wait_for("the node to be Ready and untainted", Duration::from_secs(120), || {
            let nodes = nodes.clone();
            let dir = dir_for_logs.clone();
            async move {
                let node = nodes.get(NODE_NAME).await.map_err(|e| {
                    let tail = fs::read_to_string(dir.join("kubelet.log"))
                        .unwrap_or_default()
                        .lines()
                        .rev()
                        .take(3)
                        .collect::<Vec<_>>()
                        .join(" | ");
                    format!("{e}; kubelet: {tail}")
                })?;
                let status = node.status.unwrap_or_default();
                let ready = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| format!("{}: {}", c.status, c.message.clone().unwrap_or_default()))
                    .unwrap_or_default();
                let taints: Vec<String> = node
                    .spec
                    .and_then(|s| s.taints)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| t.key)
                    .collect();
                if ready.starts_with("True") && taints.is_empty() {
                    Ok(())
                } else {
                    Err(format!("Ready={ready}, taints {taints:?}"))
                }
            }
        })
        .await;
    });
    let node = Node {
        name: NODE_NAME.into(),
        dir,
        containerd_socket: socket,
        started_in: started.elapsed(),
    };
    eprintln!(
        "node {} Ready in {:.1}s (logs in {})",
        node.name,
        node.started_in.as_secs_f64(),
        node.dir.display()
    );
    node
}
