//! The file name an uploader gives (`?name=`): kept only for showing and for the name a
//! download is saved under, never as a path. Sanitised so that it cannot name a path, hide
//! what it is, or break a header: the last path segment only, no control or format
//! characters (bidirectional overrides included), no leading dots, bounded.

/// The longest name kept, in characters; the extension survives a cut.
pub const MAX_NAME_CHARS: usize = 200;

/// A name fit to show and to offer as a download; "file" when nothing usable is left.
pub fn sanitise(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control()
                || is_format(c)
                || matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*')
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let name = if trimmed.chars().count() > MAX_NAME_CHARS {
        shorten(trimmed)
    } else {
        trimmed.to_string()
    };
    if name.is_empty() {
        "file".into()
    } else {
        name
    }
}

/// Cuts a long name to `MAX_NAME_CHARS`, keeping a short extension.
fn shorten(name: &str) -> String {
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| !ext.is_empty() && ext.chars().count() <= 16);
    match extension {
        Some(ext) => {
            let keep = MAX_NAME_CHARS - ext.chars().count() - 1;
            let stem: String = name.chars().take(keep).collect();
            format!("{stem}.{ext}")
        }
        None => name.chars().take(MAX_NAME_CHARS).collect(),
    }
}

/// Unicode format characters (category Cf) that matter in a file name: zero-width ones,
/// bidirectional controls (which can make `gpj.exe` read as `exe.jpg`), the byte order mark.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// The `?name=` of an upload's query string, percent-decoded (invalid UTF-8 replaced).
pub fn from_query(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == "name")
        .map(|(_, value)| percent_decode(value))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_controls_and_length() {
        assert_eq!(sanitise("../../etc/passwd"), "passwd");
        assert_eq!(sanitise("C:\\Users\\ana\\foto.jpg"), "foto.jpg");
        assert_eq!(sanitise("a\u{0}b\nc.png"), "a_b_c.png");
        assert_eq!(sanitise("fig\u{202E}gnp.exe"), "fig_gnp.exe");
        assert_eq!(sanitise("..."), "file");
        assert_eq!(sanitise(".htaccess"), "htaccess");
        assert_eq!(sanitise(""), "file");
        assert_eq!(sanitise("say \"hi\".txt"), "say _hi_.txt");
        let long = format!("{}.jpeg", "x".repeat(500));
        let short = sanitise(&long);
        assert_eq!(short.chars().count(), MAX_NAME_CHARS);
        assert!(short.ends_with(".jpeg"));
    }

    #[test]
    fn the_query_name_is_decoded() {
        assert_eq!(
            from_query("name=f%C3%B3to%201.png").as_deref(),
            Some("fóto 1.png")
        );
        assert_eq!(from_query("x=1&name=a+b").as_deref(), Some("a b"));
        assert_eq!(from_query("name=%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(from_query("other=1"), None);
    }
}
