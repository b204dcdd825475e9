//! The deploy files, checked without Docker or Kubernetes (neither runs on these machines):
//! the compose file and manifests parse, every flag they pass is one the real binary accepts
//! (`meridian check-config`), every peer, port, certificate and volume they name exists, and
//! the Dockerfile copies only what the repository has.

use meridian_tests::meridian_bin;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate sits in the repository").to_path_buf()
}

fn load(path: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

fn strings(list: &Yaml) -> Vec<String> {
    list.as_vec().map(|v| v.iter().map(|s| s.as_str().or(s.as_i64().map(|_| "")).expect("a list of strings").to_string()).collect()).unwrap_or_default()
}

/// The value after `flag` in `args`, each time it appears.
fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
    args.windows(2).filter(|w| w[0] == flag).map(|w| w[1].as_str()).collect()
}

fn value<'a>(args: &'a [String], flag: &str) -> &'a str {
    values(args, flag).first().copied().unwrap_or_else(|| panic!("{flag} missing from {args:?}"))
}

/// Asserts that the real binary accepts these server flags.
fn check_config(args: &[String], what: &str) {
    let out = Command::new(meridian_bin()).arg("check-config").args(args).output().expect("run meridian check-config");
    assert!(out.status.success(), "{what}: meridian refuses its flags: {}", String::from_utf8_lossy(&out.stderr));
}

/// `${NAME:-default}` as compose expands it when NAME is unset.
fn expand_defaults(arg: &str) -> String {
    match (arg.strip_prefix("${"), arg.find(":-")) {
        (Some(_), Some(at)) if arg.ends_with('}') => arg[at + 2..arg.len() - 1].to_string(),
        _ => arg.to_string(),
    }
}

fn split_host_port(addr: &str) -> (&str, u16) {
    let (host, port) = addr.rsplit_once(':').unwrap_or_else(|| panic!("{addr} is not host:port"));
    (host, port.parse().unwrap_or_else(|_| panic!("{addr}: bad port")))
}

#[test]
fn the_compose_lab_is_consistent_with_the_binary() {
    let doc = &load("deploy/docker-compose.yml")[0];
    let services = doc["services"].as_hash().expect("services");
    let name = |k: &Yaml| k.as_str().unwrap().to_string();
    let regions: Vec<String> = services.keys().map(name).filter(|n| !n.starts_with("wan-") && n != "certs").collect();
    assert_eq!(regions, ["us", "eu", "ap"]);

    // The certificates the init service makes are the ones the regions load.
    let certs = strings(&doc["services"]["certs"]["entrypoint"]).join(" ");
    assert!(certs.contains("meridian certs /certs --nodes us,eu,ap"), "{certs}");

    let args_of = |service: &str| strings(&doc["services"][service]["command"]);
    let mut geo_port = BTreeMap::new();
    for region in &regions {
        let args = args_of(region);
        check_config(&args, region);
        assert_eq!(value(&args, "--node-name"), region);
        for (flag, file) in [("--tls-cert", format!("/certs/{region}.pem")), ("--tls-key", format!("/certs/{region}.key")), ("--tls-ca", "/certs/ca.pem".into())] {
            assert_eq!(value(&args, flag), file, "{region} {flag}");
        }
        let volumes = strings(&doc["services"][region.as_str()]["volumes"]);
        assert!(volumes.iter().any(|v| v.starts_with("certs:/certs")), "{region} mounts the certificates: {volumes:?}");
        assert!(volumes.iter().any(|v| v.ends_with(&format!(":{}", value(&args, "--dir")))), "{region} keeps its data dir on a volume: {volumes:?}");
        let ports = strings(&doc["services"][region.as_str()]["ports"]);
        assert!(ports.iter().all(|p| p.ends_with(&format!(":{}", value(&args, "--port")))), "{region} publishes its client port: {ports:?}");
        geo_port.insert(region.clone(), value(&args, "--geo-port").parse::<u16>().unwrap());
    }
    // Every region reaches every other through a link proxy that forwards to its geo port.
    for region in &regions {
        let args = args_of(region);
        let mut reached = BTreeSet::new();
        for peer in values(&args, "--peer") {
            let (proxy, port) = split_host_port(peer);
            assert!(services.contains_key(&Yaml::String(proxy.into())), "{region} dials {proxy}, which is not a service");
            let wan: Vec<String> = args_of(proxy).iter().map(|a| expand_defaults(a)).collect();
            let allowed = ["--listen", "--target", "--delay-ms", "--jitter-ms", "--loss"];
            for flag in wan.iter().step_by(2) {
                assert!(allowed.contains(&flag.as_str()), "{proxy}: meridian wan has no {flag}");
            }
            assert_eq!(split_host_port(value(&wan, "--listen")).1, port, "{proxy} listens where {region} dials");
            value(&wan, "--delay-ms").parse::<u64>().unwrap_or_else(|_| panic!("{proxy}: delay is a number"));
            let (target, target_port) = split_host_port(value(&wan, "--target"));
            assert_eq!(geo_port.get(target), Some(&target_port), "{proxy} forwards to {target}'s geo port");
            reached.insert(target.to_string());
        }
        let others: BTreeSet<String> = regions.iter().filter(|r| *r != region).cloned().collect();
        assert_eq!(reached, others, "{region} peers with every other region");
    }
    let build = &doc["x-meridian"]["build"];
    let dockerfile = repo().join("deploy").join(build["context"].as_str().unwrap()).join(build["dockerfile"].as_str().unwrap());
    assert!(dockerfile.exists(), "{} is missing", dockerfile.display());
}

#[test]
fn the_kubernetes_manifests_are_consistent_with_the_binary() {
    let docs = load("deploy/k8s/meridian.yaml");
    let of_kind = |kind: &'static str| docs.iter().filter(move |d| d["kind"].as_str() == Some(kind));
    let headless: BTreeMap<String, &Yaml> =
        of_kind("Service").filter(|s| s["spec"]["clusterIP"].as_str() == Some("None")).map(|s| (s["metadata"]["name"].as_str().unwrap().to_string(), s)).collect();
    let sets: Vec<&Yaml> = of_kind("StatefulSet").collect();
    assert_eq!(sets.len(), 3, "a StatefulSet per region");
    // Each set's DNS name (<set>-0.<service>) and geo port.
    let mut geo = BTreeMap::new();
    for set in &sets {
        let name = set["metadata"]["name"].as_str().unwrap();
        let service = set["spec"]["serviceName"].as_str().unwrap();
        assert!(headless.contains_key(service), "{name}'s serviceName {service} is a headless Service");
        let args = strings(&set["spec"]["template"]["spec"]["containers"][0]["args"]);
        geo.insert(format!("{name}-0.{service}"), value(&args, "--geo-port").parse::<u16>().unwrap());
    }
    for set in &sets {
        let name = set["metadata"]["name"].as_str().unwrap();
        let pod = &set["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let args = strings(&container["args"]);
        check_config(&args, name);
        let (port, geo_port) = (value(&args, "--port").parse::<i64>().unwrap(), value(&args, "--geo-port").parse::<i64>().unwrap());
        // Ports: the container's, its Service's and its probes' agree with the flags.
        let declared: Vec<(i64, &str)> = container["ports"].as_vec().unwrap().iter().map(|p| (p["containerPort"].as_i64().unwrap(), p["protocol"].as_str().unwrap())).collect();
        assert!(declared.contains(&(port, "TCP")) && declared.contains(&(geo_port, "UDP")), "{name} ports {declared:?}");
        let service = headless[set["spec"]["serviceName"].as_str().unwrap()];
        let exposed: Vec<(i64, &str)> = service["spec"]["ports"].as_vec().unwrap().iter().map(|p| (p["port"].as_i64().unwrap(), p["protocol"].as_str().unwrap())).collect();
        assert!(exposed.contains(&(port, "TCP")) && exposed.contains(&(geo_port, "UDP")), "{name}'s Service ports {exposed:?}");
        for probe in ["readinessProbe", "livenessProbe"] {
            assert_eq!(container[probe]["tcpSocket"]["port"].as_i64(), Some(port), "{name} {probe}");
        }
        // Peers: every other region, at its geo port.
        let peers: BTreeMap<String, u16> = values(&args, "--peer").iter().map(|p| split_host_port(p)).map(|(h, p)| (h.to_string(), p)).collect();
        for (host, port) in &peers {
            assert_eq!(geo.get(host), Some(port), "{name} dials {host}:{port}, which no StatefulSet serves");
        }
        assert_eq!(peers.len(), sets.len() - 1, "{name} peers with every other region");
        // Data dir on the PVC, certificates from the Secret, named after the node.
        let mounts: BTreeMap<&str, &str> = container["volumeMounts"].as_vec().unwrap().iter().map(|m| (m["mountPath"].as_str().unwrap(), m["name"].as_str().unwrap())).collect();
        let claims: Vec<&str> = set["spec"]["volumeClaimTemplates"].as_vec().unwrap().iter().map(|c| c["metadata"]["name"].as_str().unwrap()).collect();
        assert!(claims.contains(&mounts[value(&args, "--dir")]), "{name}: --dir is on a PVC");
        let cert_dir = Path::new(value(&args, "--tls-cert")).parent().unwrap().to_str().unwrap();
        let secret = pod["volumes"].as_vec().unwrap().iter().find(|v| v["name"].as_str() == Some(mounts[cert_dir])).expect("certificate volume");
        assert_eq!(secret["secret"]["secretName"].as_str(), Some("meridian-certs"));
        assert_eq!(value(&args, "--tls-cert"), format!("/certs/{}.pem", value(&args, "--node-name")));
    }
    let text = std::fs::read_to_string(repo().join("deploy/k8s/meridian.yaml")).unwrap();
    assert!(text.contains("create secret generic meridian-certs"), "the manifest says how to create the Secret it mounts");
}

#[test]
fn the_dockerfile_builds_from_what_the_repository_has() {
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    assert!(lines.iter().filter(|l| l.starts_with("FROM ")).count() >= 2, "a multi-stage build");
    for line in lines.iter().filter(|l| l.starts_with("COPY ") && !l.contains("--from=")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            assert!(repo().join(source).exists(), "COPY {source}: not in the repository");
        }
    }
    assert!(text.contains("libclang-dev"), "bindgen needs libclang");
    assert!(text.contains("cargo build --release -p meridian"));
    assert!(text.contains(r#"ENTRYPOINT ["meridian"]"#));
    assert!(text.contains("EXPOSE 6379/tcp 7100/udp"));
    // Every workspace member is copied, or cargo cannot read the workspace.
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let members = manifest.split("members = [").nth(1).and_then(|r| r.split(']').next()).unwrap();
    for member in members.split(',').map(|m| m.trim().trim_matches('"')).filter(|m| !m.is_empty()) {
        assert!(lines.iter().any(|l| l.starts_with(&format!("COPY {member} "))), "the Dockerfile copies workspace member {member}");
    }
}
