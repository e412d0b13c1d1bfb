//! Moving in from nginx-rtmp: reads an `nginx.conf` (and optionally the
//! `stunnel.conf` that carried its RTMPS pushes) and makes a plan of the
//! destinations antenne would create, one per `push` of the `rtmp { }`
//! applications. The plan is shown first (keys masked); creating is a
//! second, explicit step (`antenne import-nginx --yes`, or the API's
//! `"dry_run": false`), through the same rules as any destination
//! ([`crate::destinations::validate`]).
//!
//! Nothing here touches the disk or the network: the caller reads the
//! files (uploads are text in the request). `include` directives are
//! listed, not followed. Directives of the `rtmp` block that antenne does
//! not carry over (recording, HLS, exec, pull, access rules…) are listed
//! with their line, never fatal; a file nginx itself would refuse
//! (unbalanced braces, a missing `;`, an unclosed quote) is an error that
//! names the line, and nothing is created.

pub mod nginx;
pub mod stunnel;

use serde::Serialize;

use crate::output::url;
use crate::presets::Presets;
use crate::secret::StreamKey;
use crate::store::StoredDestination;
use nginx::Directive;

/// Why nothing can be planned.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Nginx(#[from] nginx::ParseError),
    #[error(transparent)]
    Stunnel(#[from] stunnel::ParseError),
    #[error("nginx.conf has no rtmp {{ }} block: nothing to import")]
    NoRtmp,
}

/// A destination to create.
#[derive(Debug, Clone)]
pub struct Planned {
    pub name: String,
    pub platform: String,
    /// Server URL without the key (`rtmp://a.rtmp.youtube.com/live2`).
    pub url: String,
    pub key: StreamKey,
    /// Line of the `push` in nginx.conf.
    pub line: usize,
    /// The stunnel service it went through, when it was a local push.
    pub via_stunnel: Option<String>,
}

/// Where nginx received OBS: a `listen` port and an application that has
/// `live on`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IngestPoint {
    pub port: u16,
    pub application: String,
    pub line: usize,
}

/// Something read but not carried over, with where it is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Note {
    pub file: &'static str,
    pub line: usize,
    pub text: String,
}

/// What an import would do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub destinations: Vec<Planned>,
    pub ingests: Vec<IngestPoint>,
    /// Directives not carried over, includes not followed, pushes that
    /// cannot become a destination.
    pub notes: Vec<Note>,
}

/// The `rtmp` directives antenne does what they say (or needs not).
const CARRIED: &[&str] = &[
    "server",
    "listen",
    "application",
    "live",
    "push",
    "chunk_size",
];

/// Reads the files into a plan. `existing` are the names of destinations
/// already there (a planned name never repeats one).
pub fn plan(
    nginx_conf: &str,
    stunnel_conf: Option<&str>,
    presets: &Presets,
    existing: &[String],
) -> Result<Plan, ImportError> {
    let tree = nginx::parse(nginx_conf)?;
    let services = match stunnel_conf {
        Some(t) => stunnel::parse(t)?,
        None => Vec::new(),
    };
    let mut plan = Plan::default();
    let mut names: Vec<String> = existing.to_vec();
    let mut found_rtmp = false;
    let mut walk: Vec<(&Directive, Vec<&str>)> = tree.iter().map(|d| (d, Vec::new())).collect();
    walk.reverse();
    // Depth-first, in file order, with the enclosing block names.
    while let Some((d, parents)) = walk.pop() {
        let in_rtmp = parents.first() == Some(&"rtmp");
        if d.name == "include" {
            plan.notes.push(note(
                d.line,
                format!(
                    "include {} is not followed: import that file too if it holds rtmp settings",
                    d.args.join(" ")
                ),
            ));
            continue;
        }
        if d.name == "rtmp" && parents.is_empty() {
            found_rtmp = true;
        } else if in_rtmp && !CARRIED.contains(&d.name.as_str()) {
            plan.notes.push(note(
                d.line,
                format!(
                    "{} {} is not carried over",
                    d.name,
                    mask_args(&d.name, &d.args)
                ),
            ));
            continue;
        }
        if in_rtmp && d.name == "push" {
            push(d, &services, presets, &mut names, &mut plan);
        }
        if in_rtmp && d.name == "application" && d.block.is_some() {
            let live = d
                .block
                .iter()
                .flatten()
                .any(|c| c.name == "live" && c.args.first().map(String::as_str) == Some("on"));
            if live {
                for port in listen_ports(&parents_block(&tree, d)) {
                    plan.ingests.push(IngestPoint {
                        port,
                        application: d.args.first().cloned().unwrap_or_default(),
                        line: d.line,
                    });
                }
            }
        }
        if let Some(block) = &d.block {
            if parents.is_empty() && d.name != "rtmp" {
                continue; // http { }, events { }, stream { }: not ours
            }
            let mut inner = parents.clone();
            inner.push(d.name.as_str());
            for c in block.iter().rev() {
                walk.push((c, inner.clone()));
            }
        }
    }
    if !found_rtmp {
        return Err(ImportError::NoRtmp);
    }
    plan.notes.sort_by_key(|n| n.line);
    Ok(plan)
}

fn note(line: usize, text: String) -> Note {
    Note {
        file: "nginx.conf",
        line,
        text,
    }
}

/// Arguments as shown in a note: URLs with their key masked.
fn mask_args(name: &str, args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.contains("://") || name.starts_with("push") || name.starts_with("pull") {
                mask_url(a)
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A URL with its last path segment masked.
fn mask_url(u: &str) -> String {
    url::masked(u, "")
}

/// The `server { }` block that holds `app` (the ports of its `listen`).
fn parents_block<'a>(tree: &'a [Directive], app: &Directive) -> Vec<&'a Directive> {
    let servers = tree
        .iter()
        .filter(|d| d.name == "rtmp")
        .flat_map(|r| r.block.iter().flatten())
        .filter(|s| s.name == "server");
    for s in servers {
        if s.block
            .iter()
            .flatten()
            .any(|c| std::ptr::eq(c, app) || c == app)
        {
            return s.block.iter().flatten().collect();
        }
    }
    Vec::new()
}

/// The ports of the `listen` directives among `list` (1935 when none).
fn listen_ports(list: &[&Directive]) -> Vec<u16> {
    let ports: Vec<u16> = list
        .iter()
        .filter(|d| d.name == "listen")
        .filter_map(|d| d.args.first())
        .filter_map(|a| a.rsplit(':').next().and_then(|p| p.parse().ok()))
        .collect();
    if ports.is_empty() {
        vec![1935]
    } else {
        ports
    }
}

/// `rtmp://host/app/KEY` → (`rtmp://host/app`, `KEY`): the key is the
/// last path segment (with any query). `None` without a path.
fn split_key(u: &str) -> Option<(&str, &str)> {
    let (_, rest) = u.split_once("://")?;
    let path_at = rest.find('/')?;
    let offset = u.len() - rest.len() + path_at;
    let path = &u[offset..];
    // The key may hold '/' only in its query part.
    let query_at = path.find('?').unwrap_or(path.len());
    let cut = offset + path[..query_at].rfind('/')?;
    Some((&u[..cut], &u[cut + 1..]))
}

/// A `push` directive into a planned destination (or a note saying why
/// it cannot be one).
fn push(
    d: &Directive,
    services: &[stunnel::Service],
    presets: &Presets,
    names: &mut Vec<String>,
    plan: &mut Plan,
) {
    let Some(raw) = d.args.first() else {
        plan.notes
            .push(note(d.line, "push without a URL is skipped".into()));
        return;
    };
    // nginx-rtmp's `push URL name=KEY` form, and `playpath=`.
    let named = d.args[1..].iter().find_map(|a| {
        a.strip_prefix("name=")
            .or_else(|| a.strip_prefix("playpath="))
    });
    let shown = mask_url(raw);
    let (mut base, key) = match (split_key(raw), named) {
        (_, Some(k)) => (raw.trim_end_matches('/').to_owned(), k.to_owned()),
        (Some((b, k)), None) if b.matches('/').count() > 2 => (b.to_owned(), k.to_owned()),
        _ => {
            plan.notes.push(note(
                d.line,
                format!("push {shown} has no stream key in its URL (nginx sends the name OBS publishes under): add this destination by hand with its key"),
            ));
            return;
        }
    };
    let target = match url::parse(&base, &key) {
        Ok(t) => t,
        Err(e) => {
            plan.notes
                .push(note(d.line, format!("push {shown} is skipped: {e}")));
            return;
        }
    };
    let mut via_stunnel = None;
    if is_local(&target.host) {
        match services.iter().find(|s| s.accepts_on(target.port)) {
            Some(s) => {
                let connect = s.connect.trim();
                let app = if target.app.is_empty() {
                    String::new()
                } else {
                    format!("/{}", target.app)
                };
                base = format!("rtmps://{connect}{app}");
                via_stunnel = Some(s.name.clone());
            }
            None => {
                plan.notes.push(note(
                    d.line,
                    format!(
                        "push {shown} goes to port {} of this machine (stunnel?): {}",
                        target.port,
                        if services.is_empty() {
                            "give the stunnel configuration to turn it into the platform's rtmps:// URL"
                        } else {
                            "no stunnel client service accepts on that port"
                        }
                    ),
                ));
                return;
            }
        }
        if let Err(e) = url::parse(&base, &key) {
            plan.notes
                .push(note(d.line, format!("push {shown} is skipped: {e}")));
            return;
        }
    }
    let platform = platform_of(presets, &base);
    let first = presets
        .get(&platform)
        .filter(|_| platform != "custom")
        .map(|p| p.name.clone())
        .unwrap_or_else(|| host_of(&base));
    let mut name = first.clone();
    let mut n = 2;
    while names.iter().any(|x| x.eq_ignore_ascii_case(&name)) {
        name = format!("{first} {n}");
        n += 1;
    }
    names.push(name.clone());
    plan.destinations.push(Planned {
        name,
        platform,
        url: base,
        key: StreamKey::new(key),
        line: d.line,
        via_stunnel,
    });
}

fn is_local(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "::1") || host.starts_with("127.")
}

fn host_of(u: &str) -> String {
    let authority = u
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(u)
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    }
    .to_ascii_lowercase()
}

/// The preset of a server: the exact host first, else the same site
/// (`b.rtmp.youtube.com` and `live-cdg.twitch.tv` are YouTube and
/// Twitch servers too), else `custom`.
pub fn platform_of(presets: &Presets, u: &str) -> String {
    let exact = presets.guess(u);
    if exact != "custom" {
        return exact.to_owned();
    }
    let site = |h: &str| {
        let labels: Vec<&str> = h.rsplit('.').take(2).collect();
        labels.into_iter().rev().collect::<Vec<_>>().join(".")
    };
    let host = host_of(u);
    if host.parse::<std::net::IpAddr>().is_ok() || !host.contains('.') {
        return "custom".into();
    }
    presets
        .all()
        .iter()
        .filter(|p| !p.url.is_empty() && p.id != "custom")
        .find(|p| site(&host_of(&p.url)) == site(&host))
        .map(|p| p.id.clone())
        .unwrap_or_else(|| "custom".into())
}

/// The planned destinations as the store keeps them (new ids, enabled,
/// relaying `ingest`'s stream), to check with
/// [`crate::destinations::validate::all`] and save.
pub fn stored(plan: &Plan, ingest: &str) -> Vec<StoredDestination> {
    plan.destinations
        .iter()
        .map(|d| StoredDestination {
            id: crate::destinations::new_id(),
            name: d.name.clone(),
            platform: d.platform.clone(),
            url: d.url.clone(),
            key: d.key.expose().to_owned(),
            enabled: true,
            ingest: ingest.to_owned(),
            via_obs: None,
            source: None,
            tracks: None,
        })
        .collect()
}

/// Every rule ([`crate::destinations::validate::all`]) over the new
/// destinations together with those already there; the problems, each
/// naming its destination (empty: all may be created).
pub fn problems(
    existing: &[StoredDestination],
    new: &[StoredDestination],
    presets: &Presets,
) -> Vec<String> {
    let all: Vec<StoredDestination> = existing.iter().chain(new).cloned().collect();
    crate::destinations::validate::all(&all, presets)[existing.len()..]
        .iter()
        .zip(new)
        .flat_map(|(p, d)| p.iter().map(move |e| format!("{}: {e}", d.name)))
        .collect()
}

// === what is shown (keys masked) ===

/// A planned destination as shown (CLI and API): the key masked.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedView {
    pub name: String,
    pub platform: String,
    pub url: String,
    pub key: String,
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_stunnel: Option<String>,
}

impl Planned {
    pub fn view(&self) -> PlannedView {
        PlannedView {
            name: self.name.clone(),
            platform: self.platform.clone(),
            url: self.url.clone(),
            key: self.key.masked(),
            line: self.line,
            via_stunnel: self.via_stunnel.clone(),
        }
    }
}

impl Plan {
    /// What OBS must change, given where antenne listens: `rtmp_port` and
    /// its application (`live`). One sentence per ingest point.
    pub fn obs_advice(&self, rtmp_port: u16, app: &str) -> Vec<String> {
        let mut out = Vec::new();
        for i in &self.ingests {
            let server = if i.port == rtmp_port && i.application == app {
                format!(
                    "OBS's server (port {}, application {}) stays as it is",
                    i.port, i.application
                )
            } else {
                format!(
                    "nginx received OBS on port {}, application {:?}: set OBS's server to rtmp://HOST:{rtmp_port}/{app}",
                    i.port, i.application
                )
            };
            out.push(format!(
                "{server}; OBS's stream key becomes antenne's ingest key (shown in the web interface)"
            ));
        }
        if self.ingests.is_empty() {
            out.push(format!("no application with \"live on\" found: point OBS at rtmp://HOST:{rtmp_port}/{app} with antenne's ingest key"));
        }
        out
    }

    /// The plan as text, keys masked (what the CLI prints).
    pub fn render(&self, rtmp_port: u16, app: &str) -> String {
        let mut s = String::new();
        if self.destinations.is_empty() {
            s.push_str("No destination to create.\n");
        } else {
            s.push_str(&format!(
                "{} destination(s) to create:\n",
                self.destinations.len()
            ));
            for d in &self.destinations {
                let v = d.view();
                s.push_str(&format!(
                    "  + {} [{}] {} key {} (nginx.conf line {}{})\n",
                    v.name,
                    v.platform,
                    v.url,
                    v.key,
                    v.line,
                    v.via_stunnel
                        .map(|x| format!(", through stunnel service {x}"))
                        .unwrap_or_default()
                ));
            }
        }
        for i in &self.ingests {
            s.push_str(&format!(
                "Ingest: nginx listened on port {}, application {} (line {})\n",
                i.port, i.application, i.line
            ));
        }
        for a in self.obs_advice(rtmp_port, app) {
            s.push_str(&format!("OBS: {a}\n"));
        }
        if !self.notes.is_empty() {
            s.push_str("Not carried over:\n");
            for n in &self.notes {
                s.push_str(&format!("  - {} line {}: {}\n", n.file, n.line, n.text));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests;
