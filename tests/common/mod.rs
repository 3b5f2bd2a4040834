//! The test environment: a real etcd + kube-apiserver (started the way controller-runtime's
//! envtest does it) and the moto-based AWS emulator, one of each per test binary, plus helpers
//! for per-test namespaces, AWS accounts, buckets and operator processes.
//!
//! Processes are started from one long-lived thread with `PR_SET_PDEATHSIG`, so they die with
//! the test binary whatever happens (panics included). Build the binaries with `make testenv`.

#![allow(dead_code)]

/// One `#[tokio::test]` per `name => operation` pair, each calling `run(operation)`: the crash
/// tests' table (`run` aborts the operator right after `operation`).
#[allow(unused_macros)]
macro_rules! crash_tests {
    ($run:ident: $($name:ident => $operation:literal),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $run($operation).await;
            }
        )+
    };
}

pub mod aws;
pub mod node;
pub mod scenario;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where `make testenv` puts etcd, kube-apiserver, kubectl, helm and the GitOps checkers.
pub fn bin(name: &str) -> PathBuf {
    let path = repo().join(".cache/bin").join(name);
    assert!(path.exists(), "{} is missing: run `make testenv` first", path.display());
    path
}

/// The standard output of a command that must have succeeded; its output is in the panic
/// message when it did not.
pub fn succeeded(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Runs the `ferry` command line with `args` against the test cluster (its kubeconfig).
pub fn ferry_cli(env: &TestEnv, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .unwrap_or_else(|e| panic!("ferry {args:?}: {e}"))
}

/// `ferry policy -f <manifest> --existing <existing>` against the test cluster, as a bucket
/// account's administrator runs it: the published statements merged into `existing`.
pub fn ferry_policy_merged(env: &TestEnv, manifest: &serde_json::Value, existing: &serde_json::Value) -> String {
    let file = env.dir.join(format!("policy-manifest-{}.json", suffix()));
    std::fs::write(&file, manifest.to_string()).expect("write manifest");
    let current = env.dir.join(format!("policy-existing-{}.json", suffix()));
    std::fs::write(&current, existing.to_string()).expect("write existing");
    let out = ferry_cli(
        env,
        &[
            "policy",
            "-f",
            &file.display().to_string(),
            "--existing",
            &current.display().to_string(),
        ],
    );
    succeeded(&out, "ferry policy")
}

/// The Helm chart's folder.
pub fn chart() -> String {
    repo().join("charts/ferry").display().to_string()
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// A short random suffix for names.
pub fn suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{:x}{:x}", (nanos ^ std::process::id()) & 0xfffff, n)
}

/// The environment of this test binary.
pub struct TestEnv {
    /// Scratch folder: certificates, data, logs, kubeconfig.
    pub dir: PathBuf,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub api_url: String,
    /// `http://127.0.0.1:<port>` of the AWS emulator.
    pub aws_url: String,
}

static ENV: OnceLock<Result<TestEnv, String>> = OnceLock::new();

/// What a test binary may change in its kube-apiserver; the default is what every binary gets.
#[derive(Clone, Debug, Default)]
pub struct ApiServerOptions {
    /// Extra command-line flags.
    pub extra_args: Vec<String>,
    /// Keep the ServiceAccount admission plugin on (it is off by default: without a
    /// controller-manager, nothing would create the ServiceAccounts pods need).
    pub service_account_admission: bool,
}

static APISERVER_OPTIONS: OnceLock<ApiServerOptions> = OnceLock::new();

/// Sets this binary's kube-apiserver options; only before the environment starts. Returns
/// false when options were set already or the environment started with the defaults.
pub fn set_apiserver_options(options: ApiServerOptions) -> bool {
    APISERVER_OPTIONS.set(options).is_ok()
}

/// Starts the environment on first use; later calls return it (or the same start failure).
pub fn env() -> &'static TestEnv {
    let started = ENV.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        // The processes belong to this thread (PDEATHSIG fires when the spawning thread ends),
        // so it lives as long as the test binary.
        std::thread::Builder::new()
            .name("ferry-testenv".into())
            .spawn(move || {
                match std::panic::catch_unwind(start) {
                    Ok((env, _children)) => {
                        let _ = tx.send(Ok(env));
                        // Hold the children (and this thread) until the test binary exits.
                        loop {
                            std::thread::park();
                        }
                    }
                    Err(panic) => {
                        let _ = tx.send(Err(panic));
                    }
                }
            })
            .expect("spawn the test environment thread");
        match rx.recv() {
            Ok(Ok(env)) => Ok(env),
            Ok(Err(panic)) => Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into())),
            Err(_) => Err("the test environment thread died".into()),
        }
    });
    match started {
        Ok(env) => env,
        Err(why) => panic!("the test environment could not start: {why}"),
    }
}

/// Spawns a process that is killed when the spawning thread ends; output goes to `log`.
pub fn spawn(cmd: &mut Command, log: &Path) -> Child {
    let out = fs::File::create(log).expect("create log file");
    let err = out.try_clone().expect("clone log file");
    cmd.stdout(out).stderr(err).stdin(Stdio::null());
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()))
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming what was awaited.
pub fn wait_blocking<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls an async `check` until it returns `Some`, or panics after `timeout` with the last
/// state it reported.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(state) => state,
        };
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn remove_stale_dirs(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let pid: Option<i32> = name.split('-').next().and_then(|p| p.parse().ok());
        // SAFETY: kill with signal 0 only checks whether the process exists.
        if let Some(pid) = pid
            && unsafe { libc::kill(pid, 0) } != 0
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

struct Pki {
    ca: String,
    serving_cert: String,
    serving_key: String,
    client_cert: String,
    client_key: String,
    sa_key: String,
    sa_public: String,
}

/// helm with its cache, configuration and data under `home` (never the user's).
pub fn helm_at(home: &Path) -> Command {
    let mut cmd = Command::new(bin("helm"));
    cmd.env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    cmd
}

/// A self-signed CA for tests: its certificate and the issuer that signs with it.
pub fn test_ca(common_name: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, common_name);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    (ca_cert, Issuer::new(ca_params, ca_key))
}

fn pki() -> Pki {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
    let (ca_cert, issuer) = test_ca("ferry-test-ca");

    let serving_key = KeyPair::generate().expect("serving key");
    let mut serving = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
    ])
    .expect("serving params");
    serving.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving.signed_by(&serving_key, &issuer).expect("serving certificate");

    let client_key = KeyPair::generate().expect("client key");
    let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client.distinguished_name.push(DnType::CommonName, "ferry-test-admin");
    client
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &issuer).expect("client certificate");

    let sa_key = KeyPair::generate().expect("service-account key");
    Pki {
        ca: ca_cert.pem(),
        serving_cert: serving_cert.pem(),
        serving_key: serving_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
        sa_public: sa_key.public_key_pem(),
        sa_key: sa_key.serialize_pem(),
    }
}

fn kubeconfig_yaml(api_url: &str, pki: &Pki) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: ferry-test\n  cluster:\n    server: {api_url}\n    certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: ferry-test\n  context:\n    cluster: ferry-test\n    user: admin\ncurrent-context: ferry-test\n",
        base64_encode(&pki.ca),
        base64_encode(&pki.client_cert),
        base64_encode(&pki.client_key)
    )
}

/// Standard base64 (the kubeconfig's `*-data` fields).
pub fn base64_encode(input: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

fn start() -> (TestEnv, Vec<Child>) {
    let root = repo().join("target/ferry-testenv");
    fs::create_dir_all(&root).expect("create target/ferry-testenv");
    remove_stale_dirs(&root);
    let dir = root.join(format!("{}-{}", std::process::id(), suffix()));
    fs::create_dir_all(dir.join("etcd")).expect("create the scratch folder");
    let started = Instant::now();

    // PKI, as envtest makes it.
    let pki = pki();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        fs::write(&path, text).expect("write PKI file");
        path
    };
    let ca = write("ca.crt", &pki.ca);
    let serving_cert = write("apiserver.crt", &pki.serving_cert);
    let serving_key = write("apiserver.key", &pki.serving_key);
    let sa_key = write("sa.key", &pki.sa_key);
    let sa_public = write("sa.pub", &pki.sa_public);

    // etcd.
    let (client_port, peer_port) = (free_port(), free_port());
    let etcd_url = format!("http://127.0.0.1:{client_port}");
    let etcd = spawn(
        Command::new(bin("etcd"))
            .arg("--name=ferry-test")
            .arg(format!("--data-dir={}", dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!("--initial-cluster=ferry-test=http://127.0.0.1:{peer_port}"))
            .arg("--unsafe-no-fsync=true")
            .arg("--log-level=warn"),
        &dir.join("etcd.log"),
    );
    wait_blocking("etcd /health", Duration::from_secs(30), || {
        http_get(client_port, "/health").filter(|b| b.contains("\"health\":\"true\""))
    });

    // The AWS emulator.
    let python = repo().join(".cache/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make testenv` first",
        python.display()
    );
    let emulator_log = dir.join("emulator.log");
    let stdout_path = dir.join("emulator.stdout");
    let mut emulator_cmd = Command::new(&python);
    emulator_cmd
        .arg(repo().join("tests/emulator/ferry_emulator.py"))
        .args(["--port", "0", "--phase-seconds", "0.3"])
        .arg(format!("--parent-pid={}", std::process::id()));
    let out = fs::File::create(&stdout_path).expect("emulator stdout");
    let err = fs::File::create(&emulator_log).expect("emulator log");
    emulator_cmd.stdout(out).stderr(err).stdin(Stdio::null());
    // SAFETY: see `spawn`.
    unsafe {
        emulator_cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let emulator = emulator_cmd.spawn().expect("start the AWS emulator");

    // kube-apiserver.
    let options = APISERVER_OPTIONS.get_or_init(ApiServerOptions::default).clone();
    let secure_port = free_port();
    let api_url = format!("https://127.0.0.1:{secure_port}");
    let mut apiserver_cmd = Command::new(bin("kube-apiserver"));
    if !options.service_account_admission {
        apiserver_cmd.arg("--disable-admission-plugins=ServiceAccount");
    }
    apiserver_cmd.args(&options.extra_args);
    let mut apiserver = spawn(
        apiserver_cmd
            .arg(format!("--etcd-servers={etcd_url}"))
            .arg(format!("--cert-dir={}", dir.display()))
            .arg(format!("--secure-port={secure_port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg(format!("--tls-cert-file={}", serving_cert.display()))
            .arg(format!("--tls-private-key-file={}", serving_key.display()))
            .arg(format!("--client-ca-file={}", ca.display()))
            .arg(format!("--service-account-key-file={}", sa_public.display()))
            .arg(format!("--service-account-signing-key-file={}", sa_key.display()))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg("--authorization-mode=RBAC")
            .arg("--service-cluster-ip-range=10.0.0.0/24")
            .arg("--allow-privileged=true")
            .arg("--endpoint-reconciler-type=none")
            .arg("--enable-priority-and-fairness=false")
            .arg("--profiling=false")
            .arg("-v=1"),
        &dir.join("apiserver.log"),
    );

    let aws_port = wait_blocking("the AWS emulator's READY line", Duration::from_secs(60), || {
        let text = fs::read_to_string(&stdout_path).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("READY ").and_then(|p| p.trim().parse::<u16>().ok()))
    });

    let kubeconfig = dir.join("kubeconfig");
    fs::write(&kubeconfig, kubeconfig_yaml(&api_url, &pki)).expect("write kubeconfig");

    let env = TestEnv {
        dir: dir.clone(),
        kubeconfig,
        api_url,
        aws_url: format!("http://127.0.0.1:{aws_port}"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = env.client().await;
        let log = dir.join("apiserver.log");
        wait_for("kube-apiserver to serve", Duration::from_secs(90), || {
            let client = client.clone();
            if let Ok(Some(status)) = apiserver.try_wait() {
                let tail: Vec<String> = lines_matching(&log, |_| true).into_iter().rev().take(5).collect();
                panic!("kube-apiserver exited ({status}): {tail:?}");
            }
            async move {
                let ns: Api<Namespace> = Api::all(client);
                ns.get("default").await.map(|_| ()).map_err(|e| e.to_string())
            }
        })
        .await;
        install_crd(&client).await;
    });
    eprintln!(
        "test environment ready in {:.1}s: {} (logs in {})",
        started.elapsed().as_secs_f64(),
        env.api_url,
        dir.display()
    );
    (env, vec![etcd, emulator, apiserver])
}

/// Applies `crds/` and waits until the CRDs are Established.
pub async fn install_crd(client: &Client) {
    for plural in ["crossaccounttransfers", "transferpolicies"] {
        install_one_crd(client, plural).await;
    }
}

async fn install_one_crd(client: &Client, plural: &str) {
    let name = format!("{plural}.ferry.dev");
    let text = fs::read_to_string(repo().join(format!("crds/ferry.dev_{plural}.yaml"))).expect("read crds/");
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).expect("parse the CRD");
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.patch(&name, &PatchParams::apply("ferry-tests").force(), &Patch::Apply(&crd))
        .await
        .expect("install the CRD");
    wait_for(
        &format!("the CRD {name} to be Established"),
        Duration::from_secs(30),
        || {
            let (api, name) = (api.clone(), name.clone());
            async move {
                let crd = api.get(&name).await.map_err(|e| e.to_string())?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    Ok(())
                } else {
                    Err("not Established".into())
                }
            }
        },
    )
    .await;
}

impl TestEnv {
    /// An admin client.
    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig");
        Client::try_from(config).expect("client")
    }

    /// Creates a fresh namespace for one test.
    pub async fn namespace(&self, client: &Client, prefix: &str) -> String {
        let name = format!("{prefix}-{}", suffix());
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("namespace");
        api.create(&PostParams::default(), &ns).await.expect("create namespace");
        name
    }

    /// Runs kubectl against the test API server.
    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin("kubectl"))
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!("--cache-dir={}", self.dir.join("kubectl-cache").display()))
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// Server-side dry-run of `manifests` in namespace `ns` (through a file, as a user would
    /// apply them); kubectl's output, or a panic saying why the API server refused.
    pub fn dry_run_apply(&self, ns: &str, manifests: &str) -> String {
        let path = self.dir.join(format!("dry-run-{}.yaml", suffix()));
        std::fs::write(&path, manifests).expect("write manifests");
        succeeded(
            &self.kubectl(&["apply", "--dry-run=server", "-n", ns, "-f", &path.display().to_string()]),
            "kubectl apply --dry-run=server",
        )
    }

    /// Runs helm against the test API server, with its caches in the scratch folder.
    pub fn helm(&self, args: &[&str]) -> std::process::Output {
        helm_at(&self.dir.join("helm"))
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .output()
            .expect("run helm")
    }

    /// Starts the real `ferry run` for one namespace with Account A's credentials.
    pub fn operator(&self, namespace: &str, creds: &aws::Creds, extra: &[(&str, &str)]) -> Operator {
        let port = free_port();
        let log = self.dir.join(format!("operator-{namespace}-{}.log", suffix()));
        let mut vars: BTreeMap<String, String> = [
            ("KUBECONFIG", self.kubeconfig.display().to_string()),
            ("AWS_ENDPOINT_URL", self.aws_url.clone()),
            ("AWS_ACCESS_KEY_ID", creds.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key.clone()),
            ("AWS_SESSION_TOKEN", creds.session_token.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("FERRY_WATCH_NAMESPACE", namespace.into()),
            ("FERRY_METRICS_ADDR", format!("127.0.0.1:{port}")),
            ("FERRY_LEADER_ELECTION", "false".into()),
            // The tenancy tests turn it on; elsewhere a policy per test would only add noise.
            ("FERRY_TRANSFER_POLICIES", "disabled".into()),
            ("FERRY_LOG_FORMAT", "json".into()),
            ("FERRY_POLL_INTERVAL", "1s".into()),
            ("FERRY_EXTERNAL_RETRY", "2s".into()),
            ("FERRY_PROPAGATION_WINDOW", "20s".into()),
            ("RUST_LOG", "info,ferry=debug".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        // `make bench` runs the release build through FERRY_BENCH_BIN.
        let binary = std::env::var("FERRY_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferry").to_string());
        let mut cmd = Command::new(binary);
        cmd.arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&vars);
        let child = spawn(&mut cmd, &log);
        Operator {
            child: Some(child),
            log,
            metrics_port: port,
        }
    }
}

/// A running `ferry run`; killed when dropped.
pub struct Operator {
    child: Option<Child>,
    /// Its log file.
    pub log: PathBuf,
    /// Port of its /metrics, /healthz and /readyz.
    pub metrics_port: u16,
}

impl Operator {
    /// Kills it at once (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks it to stop (SIGTERM) and waits for it to exit.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: sending a signal to our own child.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its process id (0 once it has exited).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until the process exits by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "operator did not exit; log: {}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET on its HTTP server.
    pub fn http(&self, path: &str) -> Option<String> {
        http_get(self.metrics_port, path)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("operator log: {}", self.log.display());
        }
        self.kill();
    }
}

/// Reads lines of a file that match a predicate (for log assertions).
pub fn lines_matching(path: &Path, pred: impl Fn(&str) -> bool) -> Vec<String> {
    fs::File::open(path)
        .map(|f| {
            BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter(|l| pred(l))
                .collect()
        })
        .unwrap_or_default()
}
