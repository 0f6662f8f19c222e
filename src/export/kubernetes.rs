//! An entry as a Kubernetes workload: a Deployment of one replica for a
//! process that runs indefinitely, a Job for one with a duration (or one
//! that is not restarted). Typed objects, serialized by a YAML library:
//! no YAML is written by hand here.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Plan, one_line, untranslated_common, whole_secs};
use crate::probe::{parse_url, split_host_port};
use crate::registry::Entry;

/// The prefix of our annotations (a DNS subdomain, as Kubernetes wants).
const ANNOTATION: &str = "process-guardian";

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Meta,
    pub spec: Spec,
}

#[derive(Serialize, Debug, Clone, Default)]
pub struct Meta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Debug, Clone)]
#[serde(untagged)]
pub enum Spec {
    Deployment(DeploymentSpec),
    Job(JobSpec),
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    replicas: u32,
    selector: Selector,
    /// One process at a time, as under process-guardian: the old pod is
    /// gone before the new one starts.
    strategy: Strategy,
    template: PodTemplate,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    match_labels: BTreeMap<String, String>,
}

#[derive(Serialize, Debug, Clone)]
pub struct Strategy {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    backoff_limit: i32,
    template: PodTemplate,
}

#[derive(Serialize, Debug, Clone)]
pub struct PodTemplate {
    metadata: Meta,
    spec: PodSpec,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    restart_policy: &'static str,
    termination_grace_period_seconds: i64,
    containers: Vec<Container>,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    name: String,
    image: String,
    command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<EnvVar>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env_from: Vec<EnvFrom>,
    #[serde(skip_serializing_if = "Option::is_none")]
    readiness_probe: Option<Probe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    liveness_probe: Option<Probe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Resources>,
}

#[derive(Serialize, Debug, Clone)]
pub struct EnvVar {
    name: String,
    value: String,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct EnvFrom {
    secret_ref: SecretRef,
}

#[derive(Serialize, Debug, Clone)]
pub struct SecretRef {
    name: String,
}

#[derive(Serialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    #[serde(skip_serializing_if = "Option::is_none")]
    http_get: Option<HttpGet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_socket: Option<TcpSocket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exec: Option<Exec>,
    period_seconds: i64,
    timeout_seconds: i64,
    failure_threshold: i64,
}

#[derive(Serialize, Debug, Clone)]
pub struct HttpGet {
    path: String,
    port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
}

#[derive(Serialize, Debug, Clone)]
pub struct TcpSocket {
    port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
}

#[derive(Serialize, Debug, Clone)]
pub struct Exec {
    command: Vec<String>,
}

#[derive(Serialize, Debug, Clone)]
pub struct Resources {
    limits: BTreeMap<String, String>,
}

/// A name Kubernetes accepts for an object and a container (an RFC 1123
/// label): lower case, `-` for `.` and `_`, at most 63 characters, `taken`
/// names avoided with a `-2`, `-3`… suffix.
pub fn dns_name(name: &str, taken: &[String]) -> String {
    let base: String = name
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' => c,
            _ => '-',
        })
        .collect();
    let trim = |s: &str, max: usize| -> String {
        let s: String = s.chars().take(max).collect();
        let s = s.trim_matches('-').to_string();
        if s.is_empty() { "process".into() } else { s }
    };
    let first = trim(&base, 63);
    if !taken.contains(&first) {
        return first;
    }
    (2..)
        .map(|n| {
            let suffix = format!("-{n}");
            format!("{}{suffix}", trim(&base, 63 - suffix.len()))
        })
        .find(|c| !taken.contains(c))
        .unwrap_or(first)
}

/// What `export kubernetes` needs besides the entry.
pub struct Context<'a> {
    pub image: &'a str,
    pub namespace: Option<&'a str>,
    pub registry: &'a str,
}

/// The workload for one entry, named `k8s_name`.
pub fn object(plan: &Plan, k8s_name: &str, cx: &Context) -> Object {
    let e = &plan.entry;
    let mut untranslated = untranslated_common(e);
    let labels = BTreeMap::from([("app.kubernetes.io/name".to_string(), k8s_name.to_string())]);

    let readiness_probe = e.ready.as_ref().and_then(|r| {
        let (kind, target) = r.probe()?;
        let p = probe(kind, target, 1, 2, 1);
        if p.is_none() {
            untranslated.push(format!(
                "ready ({kind} {}): Kubernetes probes HTTP, TCP and commands only",
                one_line(target)
            ));
        }
        p
    });
    let liveness_probe = e.health.as_ref().and_then(|h| {
        let (kind, target) = h.probe()?;
        probe(
            kind,
            target,
            whole_secs(h.interval().as_secs_f64(), 1),
            whole_secs(h.timeout().as_secs_f64(), 1),
            i64::from(h.failures()),
        )
    });
    if e.health.is_some() && e.ready.is_some() {
        untranslated.push(
            "health runs from the container's start here, not once it is ready as under process-guardian"
                .into(),
        );
    }
    if e.stop_signal() != crate::signals::StopSignal::default() {
        untranslated.push(format!(
            "stop_signal {}: Kubernetes stops a container with TERM (or the image's STOPSIGNAL)",
            e.stop_signal()
        ));
    }
    if e.timestamps {
        untranslated
            .push("timestamps: `kubectl logs --timestamps` stamps each line instead".into());
    }
    if e.log_max_bytes.is_some() || e.log_keep.is_some() {
        untranslated.push(
            "log_max_bytes, log_keep: the container's output goes to `kubectl logs`, which the kubelet rotates"
                .into(),
        );
    }
    let mut env_from = Vec::new();
    if let Some(file) = &e.env_file {
        let secret = format!("{k8s_name}-env");
        untranslated.push(format!(
            "env_file {}: read from the Secret {secret}; create it with: kubectl create secret generic {secret} --from-env-file={}",
            one_line(file),
            one_line(file)
        ));
        env_from.push(EnvFrom {
            secret_ref: SecretRef { name: secret },
        });
    }
    let mut annotations = BTreeMap::from([
        (format!("{ANNOTATION}/name"), plan.name.clone()),
        (format!("{ANNOTATION}/command"), one_line(&e.command)),
        (format!("{ANNOTATION}/registry"), one_line(cx.registry)),
    ]);
    if e.duration_min > 0.0 {
        annotations.insert(
            format!("{ANNOTATION}/duration-min"),
            e.duration_min.to_string(),
        );
    }
    let container = Container {
        name: k8s_name.to_string(),
        image: cx.image.to_string(),
        command: plan.argv.iter().map(|a| literal(a)).collect(),
        working_dir: Some(plan.cwd().to_string()),
        env: plan
            .env
            .iter()
            .map(|(k, v)| EnvVar {
                name: k.clone(),
                value: literal(v),
            })
            .collect(),
        env_from,
        readiness_probe,
        liveness_probe,
        resources: e.max_memory_bytes.map(|m| Resources {
            limits: BTreeMap::from([("memory".to_string(), quantity(m))]),
        }),
    };
    untranslated.push(format!(
        "the image must hold the program and its files (it ran in {})",
        one_line(plan.cwd())
    ));
    if !untranslated.is_empty() {
        annotations.insert(
            format!("{ANNOTATION}/untranslated"),
            untranslated.join("\n"),
        );
    }
    let job = e.duration_min > 0.0 || !e.auto_restart;
    let pod = |restart_policy| PodTemplate {
        metadata: Meta {
            labels: labels.clone(),
            ..Meta::default()
        },
        spec: PodSpec {
            restart_policy,
            termination_grace_period_seconds: whole_secs(e.stop_timeout().as_secs_f64(), 0),
            containers: vec![container.clone()],
        },
    };
    let metadata = Meta {
        name: Some(k8s_name.to_string()),
        namespace: cx.namespace.map(str::to_string),
        labels: labels.clone(),
        annotations,
    };
    if job {
        Object {
            api_version: "batch/v1",
            kind: "Job",
            metadata,
            spec: Spec::Job(JobSpec {
                backoff_limit: backoff_limit(e),
                template: pod(if e.auto_restart { "OnFailure" } else { "Never" }),
            }),
        }
    } else {
        Object {
            api_version: "apps/v1",
            kind: "Deployment",
            metadata,
            spec: Spec::Deployment(DeploymentSpec {
                replicas: 1,
                selector: Selector {
                    match_labels: labels.clone(),
                },
                strategy: Strategy { kind: "Recreate" },
                template: pod("Always"),
            }),
        }
    }
}

/// A value Kubernetes does not expand: it reads `$(VAR)` in a container's
/// command and env values as a reference and `$$` as `$`, so every `$` is
/// doubled.
fn literal(s: &str) -> String {
    s.replace('$', "$$")
}

/// Retries of a Job: none without `auto_restart`, `max_restarts` with it
/// (0, no limit, as the largest count Kubernetes takes).
fn backoff_limit(e: &Entry) -> i32 {
    if !e.auto_restart {
        0
    } else if e.max_restarts == 0 {
        i32::MAX
    } else {
        i32::try_from(e.max_restarts).unwrap_or(i32::MAX)
    }
}

/// A probe of ours as Kubernetes says it; `None` for a log probe. A probe
/// of the loopback address goes to the pod's own address, which is the
/// same process seen from the kubelet.
fn probe(kind: &str, target: &str, period: i64, timeout: i64, failures: i64) -> Option<Probe> {
    let local = |h: &str| matches!(h, "127.0.0.1" | "localhost" | "::1" | "0.0.0.0" | "::");
    let mut p = Probe {
        period_seconds: period,
        timeout_seconds: timeout,
        failure_threshold: failures.max(1),
        ..Probe::default()
    };
    match kind {
        "http" => {
            let (host, port, path) = parse_url(target).ok()?;
            p.http_get = Some(HttpGet {
                path,
                port,
                host: (!local(&host)).then_some(host),
            });
        }
        "tcp" => {
            let (host, port) = split_host_port(target).ok()?;
            p.tcp_socket = Some(TcpSocket {
                port,
                host: (!local(host)).then(|| host.to_string()),
            });
        }
        "cmd" => {
            p.exec = Some(Exec {
                command: vec!["/bin/sh".into(), "-c".into(), target.to_string()],
            });
        }
        _ => return None,
    }
    Some(p)
}

/// Bytes as a Kubernetes quantity: `512Mi` where exact, else bytes.
fn quantity(bytes: u64) -> String {
    for (unit, size) in [
        ("Ti", 1u64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// One object as a YAML document. The library writes YAML 1.2, where `on`,
/// `no` or `10:30` are plain strings; Kubernetes (go-yaml) and PyYAML read
/// YAML 1.1, where they are a boolean or a number, so an env value `on`
/// would fail to load. An object holding such a string is written in JSON
/// instead, which is YAML too and quotes every string.
pub fn to_yaml(o: &Object) -> Result<String, String> {
    let value = serde_json::to_value(o).map_err(|e| e.to_string())?;
    if any_string(&value, &|s| yaml11_ambiguous(s)) {
        let json = serde_json::to_string_pretty(o).map_err(|e| e.to_string())?;
        return Ok(format!(
            "# In JSON: a value in it reads as a boolean or a number to YAML 1.1 readers\n{json}\n"
        ));
    }
    yaml_serde::to_string(o).map_err(|e| e.to_string())
}

fn any_string(v: &serde_json::Value, test: &dyn Fn(&str) -> bool) -> bool {
    match v {
        serde_json::Value::String(s) => test(s),
        serde_json::Value::Array(a) => a.iter().any(|v| any_string(v, test)),
        serde_json::Value::Object(m) => m.iter().any(|(k, v)| test(k) || any_string(v, test)),
        _ => false,
    }
}

/// A YAML 1.1 boolean word, or a number only YAML 1.1 has (`0b101`,
/// `1_000`, base 60 `10:30`); the numbers both versions share are already
/// quoted by the library.
fn yaml11_ambiguous(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    let numberish = t.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && t.chars()
            .all(|c| c.is_ascii_hexdigit() || "_:.xXoObB+-".contains(c));
    numberish && (t.contains(['_', ':']) || t.starts_with("0b") || t.starts_with("0B"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_name("My_App.v2", &[]), "my-app-v2");
        assert_eq!(dns_name("web", &["web".into()]), "web-2");
        assert_eq!(dns_name("web", &["web".into(), "web-2".into()]), "web-3");
        let long = "a".repeat(64);
        assert_eq!(dns_name(&long, &[]).len(), 63);
        assert!(dns_name(&long, &[dns_name(&long, &[])]).ends_with("a-2"));
        assert_eq!(dns_name("x-", &[]), "x");
    }

    #[test]
    fn strings_yaml_1_1_would_misread_are_found() {
        for s in ["on", "NO", "y", "10:30", "1_000", "0b101"] {
            assert!(yaml11_ambiguous(s), "{s}");
        }
        for s in [
            "8000",
            "python3",
            "http.server",
            "-m",
            "online",
            "1.5",
            "a:b",
        ] {
            assert!(!yaml11_ambiguous(s), "{s}");
        }
    }

    #[test]
    fn quantities_and_probes() {
        assert_eq!(quantity(60 << 20), "60Mi");
        assert_eq!(quantity(3 << 30), "3Gi");
        assert_eq!(quantity(1_000_001), "1000001");
        let p = probe("http", "http://127.0.0.1:8000/health", 1, 2, 1).unwrap();
        let h = p.http_get.unwrap();
        assert_eq!((h.port, h.path.as_str(), h.host), (8000, "/health", None));
        let p = probe("tcp", "db.internal:5432", 5, 1, 3).unwrap();
        assert_eq!(p.tcp_socket.unwrap().host.as_deref(), Some("db.internal"));
        assert!(probe("log", "ready", 1, 1, 1).is_none());
    }
}
