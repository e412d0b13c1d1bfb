//! Reads a stunnel configuration: `[service]` sections of `key = value`
//! lines, `;` and `#` comments. Only what the import needs is kept: for
//! each client service, where it accepts (a local port) and where it
//! connects (the platform's TLS server). Lines are counted so an error
//! names the line.

/// A client service: plain RTMP in on `accept`, TLS out to `connect`.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    /// `127.0.0.1:19350` or `19350` as written.
    pub accept: String,
    /// `live-api-s.facebook.com:443`.
    pub connect: String,
    /// Line of the `[name]` header.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("stunnel.conf line {line}: {what}")]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

/// The client services of a file (a global `client = yes` applies to
/// every service that does not say otherwise).
pub fn parse(text: &str) -> Result<Vec<Service>, ParseError> {
    struct Open {
        name: String,
        line: usize,
        accept: Option<String>,
        connect: Option<String>,
        client: Option<bool>,
    }
    let mut global_client = false;
    let mut open: Option<Open> = None;
    let mut done = Vec::new();
    let finish = |o: Open, global_client: bool, done: &mut Vec<Service>| {
        if let (Some(accept), Some(connect)) = (o.accept, o.connect) {
            if o.client.unwrap_or(global_client) {
                done.push(Service {
                    name: o.name,
                    accept,
                    connect,
                    line: o.line,
                });
            }
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with(';') || l.starts_with('#') {
            continue;
        }
        if let Some(rest) = l.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(ParseError {
                    line,
                    what: format!("section header {l:?} is not closed by \"]\""),
                });
            };
            if let Some(o) = open.take() {
                finish(o, global_client, &mut done);
            }
            open = Some(Open {
                name: name.trim().to_owned(),
                line,
                accept: None,
                connect: None,
                client: None,
            });
            continue;
        }
        let Some((key, value)) = l.split_once('=') else {
            return Err(ParseError {
                line,
                what: format!("{l:?} is not \"option = value\""),
            });
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim().to_owned());
        let yes = matches!(value.to_ascii_lowercase().as_str(), "yes" | "true" | "1");
        match (&mut open, key.as_str()) {
            (None, "client") => global_client = yes,
            (Some(o), "client") => o.client = Some(yes),
            (Some(o), "accept") => o.accept = Some(value),
            (Some(o), "connect") => o.connect = Some(value),
            _ => {}
        }
    }
    if let Some(o) = open.take() {
        finish(o, global_client, &mut done);
    }
    Ok(done)
}

impl Service {
    /// Whether this service accepts on `port` of this machine.
    pub fn accepts_on(&self, port: u16) -> bool {
        let (host, p) = match self.accept.rsplit_once(':') {
            Some((h, p)) => (h.trim_matches(['[', ']']), p),
            None => ("", self.accept.as_str()),
        };
        p.trim().parse::<u16>() == Ok(port)
            && matches!(
                host,
                "" | "127.0.0.1" | "localhost" | "::1" | "0.0.0.0" | "::"
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_client_services_and_where_they_connect() {
        let text = "; comment\npid = /tmp/x.pid\n[fb-live]\nclient = yes\naccept = 127.0.0.1:19350\nconnect = live-api-s.facebook.com:443\nverifyChain = yes\n\n[server]\naccept = 443\nconnect = 80\n";
        let s = parse(text).expect("parses");
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].name, "fb-live");
        assert_eq!(s[0].connect, "live-api-s.facebook.com:443");
        assert!(s[0].accepts_on(19350) && !s[0].accepts_on(1935));
    }

    #[test]
    fn names_the_broken_line() {
        let e = parse("[a\nclient = yes\n").expect_err("broken");
        assert_eq!(e.line, 1);
        let e = parse("[a]\nclient yes\n").expect_err("broken");
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("stunnel.conf line 2"), "{e}");
    }
}
