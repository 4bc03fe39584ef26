//! diffusers' `prompt_clean` for Wan (pipeline_wan.py) without ftfy, which diffusers applies
//! only when it happens to be installed: `html.unescape` twice, strip, every run of `\s`
//! (Python `regex`: Unicode White_Space) → one space, strip. Python's `str.strip()` also
//! strips U+001C–U+001F (`str.isspace`), which `\s` does not match; both are reproduced.

use super::html_entities::HTML5;

/// The text a Wan prompt is tokenized from.
pub fn prompt_clean(text: &str) -> String {
    let basic = py_strip(&html_unescape(&html_unescape(text))).to_string();
    let mut out = String::with_capacity(basic.len());
    let mut in_space = false;
    for c in basic.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    py_strip(&out).to_string()
}

/// Python's `str.strip()` with no argument.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Python's `html.unescape`: numeric references (decimal or hex, `;` optional) and HTML5 named
/// references, where a name that is not in the table resolves to its longest known prefix
/// (`&ampx` → `&x`, as browsers do), and anything else is left as it is.
pub fn html_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '&' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match reference_at(&chars, i + 1) {
            Some((len, text)) => {
                out.push_str(&text);
                i += 1 + len;
            }
            None => {
                out.push('&');
                i += 1;
            }
        }
    }
    out
}

/// The reference starting at `chars[at]` (just after a `&`): (chars consumed, replacement), as
/// Python's pattern `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)` and its
/// `_replace_charref`.
fn reference_at(chars: &[char], at: usize) -> Option<(usize, String)> {
    let run = |from: usize, ok: &dyn Fn(char) -> bool, max: usize| chars[from.min(chars.len())..].iter().take(max).take_while(|&&c| ok(c)).count();
    let semi = |end: usize| usize::from(chars.get(end) == Some(&';'));
    if chars.get(at) == Some(&'#') {
        let dec = run(at + 1, &|c| c.is_ascii_digit(), usize::MAX);
        if dec > 0 {
            let end = at + 1 + dec;
            return Some((1 + dec + semi(end), numeric(&chars[at + 1..end], 10)));
        }
        if matches!(chars.get(at + 1), Some('x' | 'X')) {
            let hex = run(at + 2, &|c| c.is_ascii_hexdigit(), usize::MAX);
            if hex > 0 {
                let end = at + 2 + hex;
                return Some((2 + hex + semi(end), numeric(&chars[at + 2..end], 16)));
            }
        }
        return None;
    }
    let n = run(at, &|c| !matches!(c, '\t' | '\n' | '\u{c}' | ' ' | '<' | '&' | '#' | ';'), 32);
    if n == 0 {
        return None;
    }
    let len = n + semi(at + n);
    let name: String = chars[at..at + len].iter().collect();
    if let Some(v) = entity(&name) {
        return Some((len, v.to_string()));
    }
    // The longest prefix of at least 2 characters that is a known name.
    for x in (2..len).rev() {
        let prefix: String = chars[at..at + x].iter().collect();
        if let Some(v) = entity(&prefix) {
            let rest: String = chars[at + x..at + len].iter().collect();
            return Some((len, format!("{v}{rest}")));
        }
    }
    Some((len, format!("&{name}")))
}

fn entity(name: &str) -> Option<&'static str> {
    HTML5.binary_search_by(|(k, _)| (*k).cmp(name)).ok().map(|i| HTML5[i].1)
}

/// A numeric reference's text, with Python's substitutions: Windows-1252 for 0x80–0x9F, U+FFFD
/// for 0, surrogates and values past U+10FFFF, nothing for other control characters and
/// noncharacters.
fn numeric(digits: &[char], radix: u32) -> String {
    // Saturating: any value past U+10FFFF gives U+FFFD, however many digits it has.
    let num = digits.iter().fold(0u64, |n, c| (n * radix as u64 + c.to_digit(radix).unwrap_or(0) as u64).min(0x11_0000));
    const CP1252: [u32; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
        0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ];
    let cp = match num {
        0 => 0xFFFD,
        0x0D => 0x0D,
        0x80..=0x9F => CP1252[(num - 0x80) as usize],
        0xD800..=0xDFFF => 0xFFFD,
        n if n > 0x10FFFF => 0xFFFD,
        n => n as u32,
    };
    let invalid = matches!(cp, 0x1..=0x8 | 0xB | 0xE..=0x1F | 0x7F..=0x9F | 0xFDD0..=0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
    // 0x80–0x9F were mapped above (three of them onto themselves, which stay).
    if invalid && !(0x80..=0x9F).contains(&num) {
        return String::new();
    }
    char::from_u32(cp).map(String::from).unwrap_or_else(|| "\u{FFFD}".into())
}
