//! Cases from moby/patternmatcher's `patternmatcher_test.go` and `ignorefile_test.go`, Go's
//! `filepath.Match` table (as patternmatcher copies it) and docker's `.dockerignore` docs.

use super::pattern::Kind;
use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Fail,
    /// The pattern matches the text itself.
    Exact,
    /// The pattern matches only a parent of the text.
    Inexact,
}
use Pass::*;

fn ignore(patterns: &[&str]) -> DockerIgnore {
    DockerIgnore::parse(&patterns.join("\n")).expect("valid patterns")
}

/// patternmatcher's `MatchesUsingParentResults` test: the parents of `text` (by Go's
/// `filepath.Dir`) first, then `text` itself.
fn excludes_walking(ignore: &DockerIgnore, text: &str) -> bool {
    let mut info = MatchInfo::default();
    let parent = go_dir(text);
    if parent != "." {
        let parts: Vec<&str> = parent.split('/').collect();
        for i in 1..=parts.len() {
            info = ignore.excludes_with_parent(&parts[..i].join("/"), &info).1;
        }
    }
    ignore.excludes_with_parent(text, &info).0
}

const MATCHES: &[(&str, &str, Pass)] = &[
    ("**", "file", Exact),
    ("**", "file/", Exact),
    ("**/", "file", Exact),
    ("**/", "file/", Exact),
    ("**", "/", Exact),
    ("**/", "/", Exact),
    ("**", "dir/file", Exact),
    ("**/", "dir/file", Exact),
    ("**", "dir/file/", Exact),
    ("**/", "dir/file/", Exact),
    ("**/**", "dir/file", Exact),
    ("**/**", "dir/file/", Exact),
    ("dir/**", "dir/file", Exact),
    ("dir/**", "dir/file/", Exact),
    ("dir/**", "dir/dir2/file", Exact),
    ("dir/**", "dir/dir2/file/", Exact),
    ("**/dir", "dir", Exact),
    ("**/dir", "dir/file", Inexact),
    ("**/dir2/*", "dir/dir2/file", Exact),
    ("**/dir2/*", "dir/dir2/file/", Inexact),
    ("**/dir2/**", "dir/dir2/dir3/file", Exact),
    ("**/dir2/**", "dir/dir2/dir3/file/", Exact),
    ("**file", "file", Exact),
    ("**file", "dir/file", Exact),
    ("**/file", "dir/file", Exact),
    ("**file", "dir/dir/file", Exact),
    ("**/file", "dir/dir/file", Exact),
    ("**/file*", "dir/dir/file", Exact),
    ("**/file*", "dir/dir/file.txt", Exact),
    ("**/file*txt", "dir/dir/file.txt", Exact),
    ("**/file*.txt", "dir/dir/file.txt", Exact),
    ("**/file*.txt*", "dir/dir/file.txt", Exact),
    ("**/**/*.txt", "dir/dir/file.txt", Exact),
    ("**/**/*.txt2", "dir/dir/file.txt", Fail),
    ("**/*.txt", "file.txt", Exact),
    ("**/**/*.txt", "file.txt", Exact),
    ("a**/*.txt", "a/file.txt", Exact),
    ("a**/*.txt", "a/dir/file.txt", Exact),
    ("a**/*.txt", "a/dir/dir/file.txt", Exact),
    ("a/*.txt", "a/dir/file.txt", Fail),
    ("a/*.txt", "a/file.txt", Exact),
    ("a/*.txt**", "a/file.txt", Exact),
    ("a[b-d]e", "ae", Fail),
    ("a[b-d]e", "ace", Exact),
    ("a[b-d]e", "aae", Fail),
    ("a[^b-d]e", "aze", Exact),
    (".*", ".foo", Exact),
    (".*", "foo", Fail),
    ("abc.def", "abcdef", Fail),
    ("abc.def", "abc.def", Exact),
    ("abc.def", "abcZdef", Fail),
    ("abc?def", "abcZdef", Exact),
    ("abc?def", "abcdef", Fail),
    ("**/foo/bar", "foo/bar", Exact),
    ("**/foo/bar", "dir/foo/bar", Exact),
    ("**/foo/bar", "dir/dir2/foo/bar", Exact),
    ("abc/**", "abc", Fail),
    ("abc/**", "abc/def", Exact),
    ("abc/**", "abc/def/ghi", Exact),
    ("**/.foo", ".foo", Exact),
    ("**/.foo", "bar.foo", Fail),
    ("a(b)c/def", "a(b)c/def", Exact),
    ("a(b)c/def", "a(b)c/xyz", Fail),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", Exact),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        Exact,
    ),
    (
        "dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        Exact,
    ),
    ("a\\\\", "a\\", Exact),
    ("a\\*b", "a*b", Exact),
];

const MULTI_MATCHES: &[(&[&str], &str, Pass)] = &[
    (&["**", "!util/docker/web"], "util/docker/web/foo", Fail),
    (
        &["**", "!util/docker/web", "util/docker/web/foo"],
        "util/docker/web/foo",
        Exact,
    ),
    (
        &[
            "**",
            "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        ],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        Fail,
    ),
    (
        &["**", "!dist/*.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        Fail,
    ),
];

#[test]
fn matches_exact() {
    for &(pattern, text, pass) in MATCHES {
        let ignore = ignore(&[pattern]);
        assert_eq!(
            ignore.patterns[0].matches(text),
            pass == Exact,
            "pattern {pattern:?} text {text:?}"
        );
    }
}

#[test]
fn matches_using_parent_results() {
    for &(pattern, text, pass) in MATCHES {
        let ignore = ignore(&[pattern]);
        let expected = pass != Fail;
        assert_eq!(
            excludes_walking(&ignore, text),
            expected,
            "{pattern:?} {text:?}"
        );
        // Without parent results patternmatcher checks the parents itself.
        let alone = ignore.excludes_with_parent(text, &MatchInfo::default()).0;
        assert_eq!(alone, expected, "no context: {pattern:?} {text:?}");
    }
    for &(patterns, text, pass) in MULTI_MATCHES {
        let ignore = ignore(patterns);
        assert_eq!(
            excludes_walking(&ignore, text),
            pass != Fail,
            "{patterns:?}"
        );
        assert_eq!(ignore.excludes(text), pass != Fail, "{patterns:?}");
    }
}

#[test]
fn compile_kinds() {
    let glob = |p: &str| matches!(ignore(&[p]).patterns[0].kind, Kind::Glob(_));
    let kind = |p: &str| ignore(&[p]).patterns[0].kind.clone();
    for p in [
        "*",
        "file*",
        "*file",
        "a*/b",
        "**/**",
        "**/dir2/*",
        "**/dir2/**",
        "**/file*txt",
        "**/**/*.txt",
        "a[b-d]e",
        ".*",
        "abc?def",
    ] {
        assert!(glob(p), "{p:?} should be a glob");
    }
    for p in ["**", "**/dir", "**file", "**/foo/bar"] {
        assert_eq!(kind(p), Kind::Suffix, "{p:?}");
    }
    assert_eq!(kind("dir/**"), Kind::Prefix);
    for p in [
        "abc.def",
        "a(b)c/def",
        "a.|)$(}+{bc",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
    ] {
        assert_eq!(kind(p), Kind::Exact, "{p:?}");
    }
}

/// Go's `filepath.Match` table, run through patternmatcher's `Matches` (the path or a parent).
#[test]
fn filepath_match_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("abc", "abc", true),
        ("*", "abc", true),
        ("*c", "abc", true),
        ("a*", "a", true),
        ("a*", "abc", true),
        ("a*", "ab/c", true),
        ("a*/b", "abc/b", true),
        ("a*/b", "a/c/b", false),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
        ("a*b?c*x", "abxbbxdbxebxczzx", true),
        ("a*b?c*x", "abxbbxdbxebxczzy", false),
        ("ab[c]", "abc", true),
        ("ab[b-d]", "abc", true),
        ("ab[e-g]", "abc", false),
        ("ab[^c]", "abc", false),
        ("ab[^b-d]", "abc", false),
        ("ab[^e-g]", "abc", true),
        ("a\\*b", "a*b", true),
        ("a\\*b", "ab", false),
        ("a?b", "a☺b", true),
        ("a[^a]b", "a☺b", true),
        ("a???b", "a☺b", false),
        ("a[^a][^a][^a]b", "a☺b", false),
        ("[a-ζ]*", "α", true),
        ("*[a-ζ]", "A", false),
        ("a?b", "a/b", false),
        ("a*b", "a/b", false),
        ("[\\]a]", "]", true),
        ("[\\-]", "-", true),
        ("[x\\-]", "x", true),
        ("[x\\-]", "-", true),
        ("[x\\-]", "z", false),
        ("[\\-x]", "x", true),
        ("[\\-x]", "-", true),
        ("[\\-x]", "a", false),
        ("*x", "xxx", true),
    ];
    for &(pattern, text, expected) in cases {
        assert_eq!(
            ignore(&[pattern]).excludes(text),
            expected,
            "{pattern:?} {text:?}"
        );
    }
}

#[test]
fn bad_patterns_are_errors() {
    for pattern in [
        "[]a]",
        "[-]",
        "[x-]",
        "[-x]",
        "\\",
        "[a-b-c]",
        "[",
        "[^",
        "[^bc",
        "a[",
        "a/[b",
        // Accepted by filepath.Match, but patternmatcher's regexp does not compile.
        "[z-a]",
        "[Local-Only]/",
    ] {
        let err = DockerIgnore::parse(pattern).expect_err(pattern);
        assert_eq!(err.pattern, pattern);
    }
    for exclamation in ["!", "! ", "!/"] {
        let err = DockerIgnore::parse(&format!("docs\n{exclamation}\n")).expect_err(exclamation);
        assert_eq!(err.message, "illegal exclusion pattern: \"!\"");
    }
}

/// `ignorefile_test.go`'s `TestReadAll` (without its `!` lines, which `New` rejects).
#[test]
fn read_all() {
    let content =
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n";
    let parsed = DockerIgnore::parse(content).expect("valid");
    let got: Vec<(bool, &str)> = parsed
        .patterns
        .iter()
        .map(|p| (p.exception, p.text.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (false, "test1"),
            (false, "test2"),
            (false, "a/file/here"),
            (false, "lastfile"),
            (true, "inverted/abs/path"),
        ]
    );
}

#[test]
fn lines_are_cleaned() {
    let text =
        "\u{feff}./a/\n  spaced  \r\n b//c/./d/../e \n#comment\n  # not a comment\n\t\n../up\n";
    let parsed = DockerIgnore::parse(text).expect("valid");
    let texts: Vec<&str> = parsed.patterns.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, ["a", "spaced", "b/c/e", "# not a comment", "../up"]);
    // A `/` alone stays (and matches no relative path); `/ /` trims to nothing.
    let parsed = DockerIgnore::parse("/\n/ /\n").expect("valid");
    let texts: Vec<&str> = parsed.patterns.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, ["/"]);
}

#[test]
fn clean_is_go_filepath_clean() {
    for (path, cleaned) in [
        ("", "."),
        (".", "."),
        ("/", "/"),
        ("//a//b/", "/a/b"),
        ("a/./b/../c", "a/c"),
        ("../../a", "../../a"),
        ("a/../..", ".."),
        ("/../a", "/a"),
        ("a/b/../../..", ".."),
    ] {
        assert_eq!(clean(path), cleaned, "{path:?}");
    }
}

#[test]
fn patternmatcher_simple_cases() {
    assert!(ignore(&["*"]).excludes("fileutils.go"));
    assert!(ignore(&["*.go"]).excludes("fileutils.go"));
    assert!(ignore(&["!fileutils.go", "*.go"]).excludes("fileutils.go"));
    assert!(!ignore(&["*.go", "!fileutils.go"]).excludes("fileutils.go"));
    assert!(!ignore(&["*.go"]).excludes("."));
    assert!(!ignore(&["**"]).excludes(""));
    assert!(!DockerIgnore::default().excludes("any/path/there"));
    // An exception re-includes a file of an excluded folder.
    for folder in ["docs", "docs/", "docs/*"] {
        let ignore = ignore(&[folder, "!docs/README.md"]);
        assert!(!ignore.excludes("docs/README.md"), "{folder:?}");
        assert!(ignore.excludes("docs/other.md"), "{folder:?}");
    }
}

#[test]
fn last_matching_pattern_wins() {
    let keep = ignore(&["*", "!keep"]);
    assert!(!keep.excludes("keep"));
    assert!(!keep.excludes("keep/inner"));
    assert!(keep.excludes("other"));
    let exclude = ignore(&["!keep", "*"]);
    assert!(exclude.excludes("keep"));
    // A directory pattern re-excludes what an exception let in below it.
    let again = ignore(&["*", "!dir", "dir/secret"]);
    assert!(!again.excludes("dir/public"));
    assert!(again.excludes("dir/secret"));
    assert!(again.excludes("dir/secret/deeper"));
}

/// The quirk `MatchesUsingParentResults` has and BuildKit keeps: an exception skipped at a
/// directory (nothing to undo yet) is not handed down to its entries.
#[test]
fn skipped_exception_is_not_inherited() {
    let ignore = ignore(&["a/b", "!a"]);
    assert!(!ignore.excludes("a"));
    assert!(ignore.excludes("a/b"));
    assert!(ignore.excludes("a/b/c"));
    // patternmatcher's MatchesOrParentMatches (no parent results) re-includes it.
    assert!(!ignore.excludes_with_parent("a/b", &MatchInfo::default()).0);
}

/// The examples of docker's `.dockerignore` documentation.
#[test]
fn docker_docs_examples() {
    let ignore_file = ignore(&["# comment", "*/temp*", "*/*/temp*", "temp?"]);
    for excluded in [
        "somedir/temporary.txt",
        "somedir/temp",
        "somedir/temp/inside",
        "somedir/subdir/temporary.txt",
        "tempa",
        "tempb",
    ] {
        assert!(ignore_file.excludes(excluded), "{excluded:?}");
    }
    for kept in [
        "temporary.txt",
        "temp",
        "a/b/c/temp.txt",
        "tempab",
        "somedir/tmp",
    ] {
        assert!(!ignore_file.excludes(kept), "{kept:?}");
    }

    let go = ignore(&["**/*.go"]);
    assert!(go.excludes("main.go"));
    assert!(go.excludes("cmd/tool/main.go"));
    assert!(!go.excludes("cmd/tool/main.rs"));

    let md = ignore(&["*.md", "!README.md"]);
    assert!(md.excludes("CHANGELOG.md"));
    assert!(!md.excludes("README.md"));
    assert!(!md.excludes("docs/guide.md"), "`*` does not cross `/`");

    let secret = ignore(&["*.md", "!README*.md", "README-secret.md"]);
    assert!(secret.excludes("README-secret.md"));
    assert!(!secret.excludes("README-public.md"));
    let secret_first = ignore(&["*.md", "README-secret.md", "!README*.md"]);
    assert!(!secret_first.excludes("README-secret.md"));

    let rooted = ignore(&["/foo/bar", "./baz"]);
    assert!(rooted.excludes("foo/bar"));
    assert!(rooted.excludes("foo/bar/x"));
    assert!(rooted.excludes("baz"));
    assert!(!rooted.excludes("x/foo/bar"));
}

#[test]
fn double_star_forms() {
    let middle = ignore(&["a/**/b"]);
    for excluded in ["a/b", "a/x/b", "a/x/y/b", "a/b/c"] {
        assert!(middle.excludes(excluded), "{excluded:?}");
    }
    for kept in ["ab", "a/xb", "b", "x/a/b"] {
        assert!(!middle.excludes(kept), "{kept:?}");
    }
    // patternmatcher's regexp: `**` not followed by `/` still needs a `/` to cross.
    let glued = ignore(&["x**y*"]);
    assert!(glued.excludes("xy1"));
    assert!(glued.excludes("x/d/y1"));
    assert!(!glued.excludes("xay"));
    // A leading `**lit` is a plain suffix test.
    assert!(ignore(&["**file"]).excludes("dir/myfile"));
    // Go's `.` stops at a newline, so `**` does not cross one (`[^/]` does).
    assert!(!middle.excludes("a/x\ny/b"));
    assert!(ignore(&["a/*/b"]).excludes("a/x\ny/b"));
}

#[test]
fn caret_is_an_anchor_in_globs_only() {
    assert!(ignore(&["a^b"]).excludes("a^b"));
    assert!(!ignore(&["a^b*"]).excludes("a^bc"));
    assert!(ignore(&["^ab*"]).excludes("abc"));
    assert!(ignore(&["a[^b]c"]).excludes("axc"));
}

#[test]
fn many_stars_stay_linear() {
    let pattern = "*a".repeat(30) + "b";
    let text = "a".repeat(5000);
    assert!(!ignore(&[pattern.as_str()]).excludes(&text));
}

#[test]
fn may_include_below() {
    assert!(!ignore(&["dir"]).may_include_below("dir"));
    let literal = ignore(&["dir", "!dir/sub/keep"]);
    assert!(literal.may_include_below("dir"));
    assert!(literal.may_include_below("dir/sub"));
    assert!(!literal.may_include_below("dir/sub/keep"));
    assert!(!literal.may_include_below("dir/other"));
    assert!(!literal.may_include_below("di"));

    let glob = ignore(&["logs", "!logs/*.txt"]);
    assert!(glob.may_include_below("logs"));
    assert!(!glob.may_include_below("logs/sub"));

    let anywhere = ignore(&["**/node_modules", "!**/node_modules/keep"]);
    assert!(anywhere.may_include_below("a/node_modules"));

    let prefix = ignore(&["*", "!vendor/**"]);
    assert!(prefix.may_include_below("vendor"));
    assert!(prefix.may_include_below("vendor/x"));
    assert!(!prefix.may_include_below("other"));

    let root = ignore(&["*", "!keep"]);
    assert!(root.may_include_below(""));
    assert!(
        !root.may_include_below("keep"),
        "nothing below `keep` is named"
    );
    assert!(!root.may_include_below("other"));
}

/// Whenever `may_include_below` says no for an excluded directory, every path below it is
/// excluded: a walker skipping it loses nothing.
#[test]
fn may_include_below_is_safe() {
    let sets: &[&[&str]] = &[
        &["*", "!keep"],
        &["*", "!a/b"],
        &["a", "!a/*/c"],
        &["a", "!a/**/c"],
        &["a", "!**/c"],
        &["**", "!a/b*"],
        &["a/b", "!a"],
        &["a", "!a", "a/b"],
        &["*", "!*/b", "a/b/c"],
        &["a*", "!a[bc]/c"],
        &["**/b", "!a/b/c?"],
        &["*", "!a/b/**"],
        &["a", "!a**c"],
    ];
    let names = ["a", "b", "c", "c1", "ab", "ac"];
    let mut paths: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    for _ in 0..2 {
        let deeper: Vec<String> = paths
            .iter()
            .flat_map(|p| names.iter().map(move |n| format!("{p}/{n}")))
            .collect();
        paths.extend(deeper);
    }
    for patterns in sets {
        let ignore = ignore(patterns);
        for dir in &paths {
            if !ignore.excludes(dir) || ignore.may_include_below(dir) {
                continue;
            }
            let below = format!("{dir}/");
            for path in paths.iter().filter(|p| p.starts_with(&below)) {
                assert!(
                    ignore.excludes(path),
                    "{patterns:?}: {path:?} kept below skipped {dir:?}"
                );
            }
        }
    }
}
