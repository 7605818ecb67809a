//! Atlassian Document Format, as much as warroom writes and reads: paragraphs of text with
//! links in, plain text out.

use serde_json::{Value, json};

/// A `doc` with one paragraph per line of `text`; `http(s)://` words become links and blank
/// lines are dropped (ADF has no empty text nodes).
#[must_use]
pub fn paragraphs(text: &str) -> Value {
    let content: Vec<Value> = text
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty())
        .map(|line| json!({"type": "paragraph", "content": inline(line)}))
        .collect();
    json!({"type": "doc", "version": 1, "content": content})
}

/// The text of an ADF document: one line per block, hard breaks as new lines. A plain string
/// (v2 payloads, servicedeskapi comments) is returned as it is.
#[must_use]
pub fn plain_text(document: &Value) -> String {
    if let Some(text) = document.as_str() {
        return text.to_owned();
    }
    let mut lines = Vec::new();
    collect_blocks(document, &mut lines);
    lines.join("\n")
}

/// Inline nodes of one line: text, with URLs as linked text.
fn inline(line: &str) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut plain = String::new();
    for (index, word) in line.split(' ').enumerate() {
        let separator = if index == 0 { "" } else { " " };
        if is_url(word) {
            plain.push_str(separator);
            if !plain.is_empty() {
                nodes.push(json!({"type": "text", "text": std::mem::take(&mut plain)}));
            }
            nodes.push(json!({"type": "text", "text": word, "marks": [{"type": "link", "attrs": {"href": word}}]}));
        } else {
            plain.push_str(separator);
            plain.push_str(word);
        }
    }
    if !plain.is_empty() {
        nodes.push(json!({"type": "text", "text": plain}));
    }
    nodes
}

fn is_url(word: &str) -> bool {
    ["https://", "http://"].iter().any(|scheme| word.len() > scheme.len() && word.starts_with(scheme))
}

/// Appends one line per block node (paragraph, heading, code block, list item) under `node`.
fn collect_blocks(node: &Value, lines: &mut Vec<String>) {
    let Some(children) = node.get("content").and_then(Value::as_array) else {
        return;
    };
    let holds_inline = children.iter().any(|child| matches!(kind(child), "text" | "hardBreak" | "mention" | "emoji"));
    if holds_inline {
        let mut line = String::new();
        for child in children {
            match kind(child) {
                "text" => line.push_str(child.get("text").and_then(Value::as_str).unwrap_or_default()),
                "hardBreak" => line.push('\n'),
                "mention" | "emoji" => {
                    line.push_str(child.pointer("/attrs/text").and_then(Value::as_str).unwrap_or_default());
                }
                _ => {}
            }
        }
        lines.push(line);
    } else {
        for child in children {
            collect_blocks(child, lines);
        }
    }
}

fn kind(node: &Value) -> &str {
    node.get("type").and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_becomes_a_paragraph_with_its_links_marked() {
        let doc = paragraphs("Slack channel: https://slack.example/C1 (live)\n\nSeverity sev2");

        assert_eq!(
            doc,
            json!({"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [
                    {"type": "text", "text": "Slack channel: "},
                    {"type": "text", "text": "https://slack.example/C1", "marks": [{"type": "link", "attrs": {"href": "https://slack.example/C1"}}]},
                    {"type": "text", "text": " (live)"}]},
                {"type": "paragraph", "content": [{"type": "text", "text": "Severity sev2"}]}]})
        );
    }

    #[test]
    fn plain_text_reads_back_what_paragraphs_wrote() {
        let text = "first line https://example.com/x\nsecond line";

        assert_eq!(plain_text(&paragraphs(text)), text);
        assert_eq!(plain_text(&json!("already plain")), "already plain");
    }
}
