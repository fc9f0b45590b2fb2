use ingot_core::{EventId, JsonText, TenantId};
use proptest::prelude::*;

use super::*;

fn p(text: &str) -> Filter {
    parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn err(text: &str) -> ParseError {
    parse(text).expect_err(text)
}

fn data(path: &str) -> Field {
    Field::parse(path).unwrap()
}

fn event(device: &str, value: Option<f64>, data: serde_json::Value) -> Event {
    Event {
        id: EventId::parse("e1").unwrap(),
        tenant: TenantId(1),
        device: device.into(),
        sensor: Some("s1".into()),
        ts: Timestamp::parse_rfc3339("2018-06-01T14:08:24.771Z").unwrap(),
        received: Timestamp::EPOCH,
        kind: Some("temperature".into()),
        value,
        data: Some(JsonText::from_value(&data)),
        payload: None,
    }
}

#[test]
fn the_brief_example() {
    let f = p("origin:probe1 and payload.type:temperature and payload.value > 20");
    let Filter::And(items) = &f else {
        panic!("{f:?}")
    };
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[2],
        Filter::Pred(Predicate::Number {
            field: data("payload.value"),
            op: CmpOp::Gt,
            value: 20.0
        })
    );
    let collector = event(
        "demoMemoria",
        Some(21.0),
        serde_json::json!({"origin": "probe1", "payload": {"type": "temperature", "value": 21}}),
    );
    assert!(f.matches(&collector));
    let cooler = event(
        "demoMemoria",
        Some(19.0),
        serde_json::json!({"origin": "probe1", "payload": {"type": "temperature", "value": 19}}),
    );
    assert!(!f.matches(&cooler));
}

#[test]
fn predicates_by_field_kind() {
    assert_eq!(
        p("device:probe-7"),
        Filter::Pred(Predicate::Text {
            field: Field::Device,
            op: CmpOp::Eq,
            value: "probe-7".into()
        })
    );
    assert_eq!(
        p("value >= 15.5"),
        Filter::Pred(Predicate::Number {
            field: Field::Value,
            op: CmpOp::Ge,
            value: 15.5
        })
    );
    assert_eq!(
        p("ts < 2018-06-01T14:08:24.771Z"),
        Filter::Pred(Predicate::Time {
            op: CmpOp::Lt,
            value: Timestamp::parse_rfc3339("2018-06-01T14:08:24.771Z").unwrap()
        })
    );
    assert_eq!(
        p("ts > 1527862104"),
        p("ts > 2018-06-01T14:08:24Z"),
        "Unix seconds"
    );
    assert_eq!(
        p("sensor:*"),
        Filter::Pred(Predicate::Exists(Field::Sensor))
    );
    assert_eq!(
        p("device:sev*"),
        Filter::Pred(Predicate::Like {
            field: Field::Device,
            pattern: Wildcard(vec![WildcardPart::Literal("sev".into()), WildcardPart::Any])
        })
    );
    assert_eq!(
        p("origin:15"),
        Filter::Pred(Predicate::DataEquals {
            path: vec!["origin".into()],
            text: "15".into(),
            number: Some(15.0),
            boolean: None
        })
    );
    assert_eq!(
        p("origin:\"15\""),
        Filter::Pred(Predicate::Text {
            field: data("origin"),
            op: CmpOp::Eq,
            value: "15".into()
        })
    );
    assert_eq!(
        p("city:\"new york\""),
        Filter::Pred(Predicate::Text {
            field: data("city"),
            op: CmpOp::Eq,
            value: "new york".into()
        })
    );
    assert_eq!(
        p("fuel_level < 10"),
        Filter::Pred(Predicate::Number {
            field: data("fuel_level"),
            op: CmpOp::Lt,
            value: 10.0
        })
    );
    assert_eq!(
        p("gear > N"),
        Filter::Pred(Predicate::Text {
            field: data("gear"),
            op: CmpOp::Gt,
            value: "N".into()
        })
    );
    assert_eq!(p("  "), Filter::All);
}

#[test]
fn operators_precedence_and_lists() {
    // not binds tighter than and, and tighter than or.
    let f = p("a:1 or b:2 and not c:3");
    let Filter::Or(items) = &f else {
        panic!("{f:?}")
    };
    assert!(matches!(&items[1], Filter::And(and) if matches!(and[1], Filter::Not(_))));
    // Adjacent terms are joined by and; keywords in any case.
    assert_eq!(p("device:a kind:b"), p("device:a AND kind:b"));
    assert_eq!(
        p("NOT (device:a OR device:b)"),
        p("not (device:a or device:b)")
    );
    assert_eq!(
        p("device:(a or b or c)"),
        p("device:a or device:b or device:c")
    );
    // A field called like a keyword is still a field.
    assert!(matches!(
        p("and:1"),
        Filter::Pred(Predicate::DataEquals { .. })
    ));
}

#[test]
fn errors_point_at_the_column() {
    let cases = [
        ("device:", 8, "expected a value"),
        ("device:a and", 13, "ends where a condition"),
        ("(device:a", 1, "never closed"),
        ("device:a)", 9, "unmatched `)`"),
        ("probe1", 1, "needs a condition"),
        ("value:hot", 7, "`value` is a number"),
        ("ts > yesterday", 6, "is not RFC 3339"),
        ("value:1*", 7, "wildcards apply to text"),
        ("device:\"open", 8, "never closed"),
        ("a..b:1", 1, "empty path segment"),
        ("device > *", 10, "plain value"),
        ("and device:a", 1, "before this operator"),
        ("device:(a b)", 11, "joined with `or`"),
        ("()", 2, "empty parentheses"),
        ("\"phrase\"", 1, "needs a field"),
        ("device:a\"b", 9, "quote inside a word"),
    ];
    for (text, column, message) in cases {
        let e = err(text);
        assert_eq!(e.column, column, "{text}: {e}");
        assert!(e.message.contains(message), "{text}: {e}");
    }
    let deep = format!("{}device:a{}", "(".repeat(100), ")".repeat(100));
    assert!(err(&deep).message.contains("nested deeper"));
    assert!(
        err(&"x".repeat(MAX_QUERY_CHARS + 1))
            .message
            .contains("longer than")
    );
}

#[test]
fn evaluation_is_two_valued() {
    let without = event("d", None, serde_json::json!({"other": 1}));
    assert!(!p("payload.value > 20").matches(&without));
    assert!(
        p("not payload.value > 20").matches(&without),
        "a missing field makes the predicate false, so not makes it true"
    );
    assert!(!p("value:*").matches(&without));
    let typed = event(
        "d",
        Some(1.0),
        serde_json::json!({"flag": true, "n": 15, "s": "15", "nested": {"x": null}}),
    );
    assert!(p("flag:true").matches(&typed));
    assert!(p("n:15").matches(&typed) && p("s:15").matches(&typed));
    assert!(
        !p("n:\"15\"").matches(&typed),
        "a phrase only matches strings"
    );
    assert!(!p("nested.x:*").matches(&typed), "null is not present");
    assert!(p("nested:*").matches(&typed));
    assert!(
        !p("s > 1").matches(&typed),
        "numbers compare only with JSON numbers"
    );
    assert!(
        !p("device:d* and sensor:s?").matches(&typed),
        "? is not a wildcard"
    );
}

#[test]
fn wildcards() {
    let w = |t: &str| match p(&format!("device:{t}")) {
        Filter::Pred(Predicate::Like { pattern, .. }) => pattern,
        other => panic!("{other:?}"),
    };
    assert!(w("sev*").matches("seville") && !w("sev*").matches("london"));
    assert!(w("*ville").matches("seville") && w("s*l*e").matches("seville"));
    assert!(w("a\\*b*").matches("a*bc") && !w("a\\*b*").matches("axbc"));
    assert!(w("a**").matches("a"));
    assert_eq!(
        p("device:**"),
        p("device:*"),
        "a pattern of wildcards only is existence"
    );
}

fn arb_filter_text() -> impl Strategy<Value = String> {
    let field = prop::sample::select(vec![
        "device",
        "sensor",
        "kind",
        "value",
        "ts",
        "origin",
        "payload.value",
        "data.unit",
        "id",
    ]);
    let value = prop::sample::select(vec![
        "probe1",
        "15",
        "-2.5",
        "sev*",
        "*",
        "\"a b\"",
        "2018-06-01T14:08:24Z",
        "true",
        "x\\*y",
    ]);
    let op = prop::sample::select(vec![":", " > ", " >= ", " < ", " <= "]);
    let leaf = (field, op, value).prop_map(|(f, o, v)| format!("{f}{o}{v}"));
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} or {b})")),
            inner.prop_map(|a| format!("not {a}")),
        ]
    })
}

proptest! {
    #[test]
    fn never_panics(text in "\\PC{0,60}") {
        if let Err(e) = parse(&text) {
            prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{e} for {text:?}");
        }
    }

    #[test]
    fn never_panics_on_query_like_text(text in "[a-z.:*()\" <>=0-9\\\\-]{0,40}( (and|or|not) [a-z.:*()\" <>=0-9-]{0,20}){0,3}") {
        if let Err(e) = parse(&text) {
            prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{e} for {text:?}");
        }
    }

    #[test]
    fn display_parses_back_to_the_same_filter(text in arb_filter_text()) {
        if let Ok(filter) = parse(&text) {
            let shown = filter.to_string();
            let again = parse(&shown).map_err(|e| TestCaseError::fail(format!("{shown}: {e}")))?;
            prop_assert_eq!(again, filter, "{}", shown);
        }
    }
}

/// Found by the fuzz target: a field named like a keyword, followed by a space.
#[test]
fn fields_named_like_keywords_round_trip() {
    for text in [
        "oR>Rnon>T",
        "or > 5",
        "and : x",
        "NOT >= 1 and or:2",
        "device:a or or < 3",
    ] {
        let f = p(text);
        let shown = f.to_string();
        assert_eq!(parse(&shown), Ok(f), "{text} shown as {shown}");
    }
    assert!(
        matches!(p("device:a or or < 3"), Filter::Or(_)),
        "the first `or` is the operator"
    );
    assert!(matches!(p("not (device:a)"), Filter::Not(_)));
}
