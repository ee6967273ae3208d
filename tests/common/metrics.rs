//! Prometheus text (paved's `/metrics` and the API server's own), and the figures the chaos
//! suite and the scale benchmark read from it: Kubernetes requests by verb and resource, AWS
//! calls by operation.

use std::collections::BTreeMap;

use kube::Client;

/// Samples of a Prometheus/OpenMetrics text exposition.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name_labels, rest) = match line.find('}') {
                Some(i) if line[..i].contains('{') => (&line[..=i], line[i + 1..].trim()),
                _ => match line.split_once(' ') {
                    Some((a, b)) => (a, b.trim()),
                    None => continue,
                },
            };
            let value: f64 = match rest.split_whitespace().next().and_then(|v| v.parse().ok()) {
                Some(v) => v,
                None => continue,
            };
            let (name, labels) = match name_labels.split_once('{') {
                Some((n, l)) => (n.to_string(), parse_labels(l.trim_end_matches('}'))),
                None => (name_labels.to_string(), BTreeMap::new()),
            };
            samples.push((name, labels, value));
        }
        Metrics { samples }
    }

    /// Sum of `name` over samples whose labels include every pair in `filter`, grouped by label
    /// `by` (or "" when absent).
    pub fn sum_by(&self, name: &str, by: &str, filter: &[(&str, &str)]) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (n, labels, v) in &self.samples {
            if n != name
                || !filter
                    .iter()
                    .all(|(k, val)| labels.get(*k).map(String::as_str) == Some(*val))
            {
                continue;
            }
            *out.entry(labels.get(by).cloned().unwrap_or_default())
                .or_insert(0.0) += v;
        }
        out
    }

    pub fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    }

    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 1..];
        let Some(after) = after.strip_prefix('"') else {
            break;
        };
        let mut val = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => val.push(c),
            }
        }
        out.insert(key, val);
        rest = &after[end..];
    }
    out
}

/// Difference `after - before` of `sum_by` maps.
pub fn delta(
    after: &BTreeMap<String, f64>,
    before: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v != 0.0)
        .collect()
}

/// The API server's own metrics (admin token).
pub async fn apiserver_metrics(client: &Client) -> Metrics {
    let req = axum::http::Request::get("/metrics")
        .body(Vec::new())
        .unwrap();
    match client.request_text(req).await {
        Ok(text) => Metrics::parse(&text),
        Err(e) => panic!("scraping the API server's /metrics: {e}"),
    }
}

/// Groups and core resources paved writes to (everything else the API server counts is its own
/// housekeeping, or the harness).
pub const PAVED_RESOURCES: [&str; 11] = [
    "postgresqlinstances",
    "instances",
    "subnetgroups",
    "securitygroups",
    "securitygrouprules",
    "parametergroups",
    "secrets",
    "events",
    "compositions",
    "providerconfigs",
    "leases",
];

pub const WRITE_VERBS: [&str; 5] = ["POST", "PUT", "PATCH", "DELETE", "APPLY"];

/// `apiserver_request_total` by `verb/resource` for the resources paved writes.
pub fn kube_requests(m: &Metrics) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (n, labels, v) in &m.samples {
        if n != "apiserver_request_total" {
            continue;
        }
        let resource = labels.get("resource").map(String::as_str).unwrap_or("");
        if !PAVED_RESOURCES.contains(&resource) {
            continue;
        }
        let verb = labels.get("verb").map(String::as_str).unwrap_or("");
        let sub = labels.get("subresource").map(String::as_str).unwrap_or("");
        let key = if sub.is_empty() {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource}/{sub}")
        };
        *out.entry(key).or_insert(0.0) += v;
    }
    out
}

/// Sum of the write verbs in a `kube_requests` map.
pub fn writes_of(m: &BTreeMap<String, f64>) -> f64 {
    m.iter()
        .filter(|(k, _)| WRITE_VERBS.iter().any(|v| k.starts_with(&format!("{v} "))))
        .map(|(_, v)| v)
        .fold(0.0, |a, b| a + b)
}

/// AWS calls by operation from paved's metrics (any `*rds_aws_calls_total` family).
pub fn aws_calls(m: &Metrics) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (name, labels, v) in &m.samples {
        if name.ends_with("rds_aws_calls_total") || name.ends_with("rds_aws_calls") {
            *out.entry(labels.get("operation").cloned().unwrap_or_default())
                .or_insert(0.0) += v;
        }
    }
    out
}
