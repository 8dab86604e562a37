#!/usr/bin/env python3
"""Tests of scripts/check-walls on small fixture trees: each wall must catch its violation, the
allow-list must excuse exactly what it lists and fail when an entry is stale, and comments,
strings and test files must not count. Run by CTest (label unit) as walls.checker."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

SOURCE = os.environ.get("EPH_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECKER = os.path.join(SOURCE, "scripts", "check-walls")
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(SOURCE, "scripts"))
import cxx_scan  # noqa: E402

# A tree that keeps every wall.
CLEAN = {
    "pkg/base/clock.h": "#pragma once\n",
    "pkg/state/store.h": '#pragma once\n#include "pkg/base/clock.h"\n',
    "pkg/state/store.cc": '#include "pkg/state/store.h"\n',
    "pkg/forge/forge.h": '#pragma once\n#include "pkg/base/clock.h"\n',
    "pkg/controller/work_key.h": '#pragma once\n#include "pkg/state/store.h"\n',
    "pkg/controller/env_record.h": "#pragma once\n",
    "pkg/controller/reconciler.cc":
        '#include "pkg/controller/env_record.h"\n#include "pkg/forge/forge.h"\n'
        "void F(Environment e) { e.spec_json = \"{}\"; }\n",
    "pkg/webhook/intake.cc": '#include "pkg/state/store.h"\n',
    "pkg/providers/provider.h": "#pragma once\n",
    "pkg/providers/kubernetes/kubernetes_provider.h": '#include "pkg/providers/provider.h"\n',
    "pkg/providers/kubernetes/readiness_cache.h": "#pragma once\n",
    "pkg/kube/kube_client.cc": '#include "pkg/base/clock.h"\n',
    "pkg/client/client.h": "#pragma once\n",
    "cmd/eph/main.cc":
        '#include "pkg/client/client.h"\n'
        "int main() { try {} catch (const std::exception& e) { dynamic_cast<const X*>(&e); } }\n",
    "cmd/ephd/daemon.cc":
        '#include "pkg/providers/kubernetes/kubernetes_provider.h"\n'
        "// A comment may say dynamic_cast and spec_json.\n"
        'const char* kText = "dynamic_cast<Foo*>(spec_json)";\n'
        "struct Oops : public std::runtime_error { using runtime_error::runtime_error; };\n"
        "int Start() { return 0; }\n",
}


class Tree:
    def __init__(self, files, allow=""):
        self.dir = tempfile.TemporaryDirectory()
        self.root = self.dir.name
        for path, text in files.items():
            self.write(path, text)
        self.write("scripts/walls-allowlist.txt", allow)

    def write(self, path, text):
        full = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as fh:
            fh.write(text)

    def check(self):
        run = subprocess.run([sys.executable, CHECKER, "--root", self.root],
                             capture_output=True, text=True, check=False)
        return run.returncode, run.stdout + run.stderr

    def close(self):
        self.dir.cleanup()


class CheckWallsTest(unittest.TestCase):
    def run_tree(self, files, allow=""):
        tree = Tree(files, allow)
        self.addCleanup(tree.close)
        return tree.check()

    def assert_caught(self, files, rule, where, allow=""):
        rc, out = self.run_tree(files, allow)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{where}: [{rule}]", out)
        return out

    def test_clean_tree_passes(self):
        rc, out = self.run_tree(CLEAN)
        self.assertEqual(rc, 0, out)
        self.assertIn("walls hold", out)

    def test_state_including_anything_above_it(self):
        files = dict(CLEAN)
        files["pkg/state/store.cc"] = '#include "pkg/state/store.h"\n#include "pkg/forge/forge.h"\n'
        out = self.assert_caught(files, "state", "pkg/state/store.cc:2")
        self.assertIn("reaches pkg/forge/forge.h", out)

    def test_webhook_reaching_a_forge_through_another_module(self):
        files = dict(CLEAN)
        files["pkg/controller/work_key.h"] = '#pragma once\n#include "pkg/forge/forge.h"\n'
        files["pkg/webhook/intake.cc"] = '#include "pkg/state/store.h"\n#include "pkg/controller/work_key.h"\n'
        out = self.assert_caught(files, "webhook", "pkg/webhook/intake.cc:2")
        self.assertIn("which includes pkg/forge/forge.h (pkg/controller/work_key.h:2)", out)

    def test_providers_and_kube_reaching_the_controller(self):
        files = dict(CLEAN)
        files["pkg/kube/kube_client.cc"] = '#include "pkg/controller/work_key.h"\n'
        self.assert_caught(files, "providers", "pkg/kube/kube_client.cc:1")
        files = dict(CLEAN)
        files["pkg/providers/kubernetes/readiness_cache.h"] = '#include "pkg/webhook/intake.h"\n'
        files["pkg/webhook/intake.h"] = "#pragma once\n"
        self.assert_caught(files, "providers", "pkg/providers/kubernetes/readiness_cache.h:1")

    def test_cli_reaching_the_store(self):
        files = dict(CLEAN)
        files["pkg/client/client.h"] = '#pragma once\n#include "pkg/state/store.h"\n'
        self.assert_caught(files, "cli", "pkg/client/client.h:2")
        # Through a module the CLI may use: reported where the CLI's own include leads there.
        files = dict(CLEAN)
        files["pkg/config/config.h"] = '#pragma once\n#include "pkg/state/store.h"\n'
        files["cmd/eph/main.cc"] = '#include "pkg/client/client.h"\n#include "pkg/config/config.h"\n'
        out = self.assert_caught(files, "cli", "cmd/eph/main.cc:2")
        self.assertIn("which includes pkg/state/store.h (pkg/config/config.h:2)", out)

    def test_build_graph_links_are_walled_too(self):
        files = dict(CLEAN)
        files["pkg/forge/CMakeLists.txt"] = "add_library(eph_forge forge.cc)\n"
        files["pkg/controller/CMakeLists.txt"] = (
            "add_library(eph_controller reconciler.cc)\n"
            "target_link_libraries(eph_controller PUBLIC eph_forge)\n")
        files["pkg/webhook/CMakeLists.txt"] = (
            "# The intake.\nadd_library(eph_webhook intake.cc)\n"
            "target_link_libraries(eph_webhook PUBLIC\n  eph_state absl::status\n  eph_controller)\n")
        files["pkg/state/CMakeLists.txt"] = (
            "add_library(eph_state store.cc)\n"
            "target_link_libraries(eph_state PUBLIC eph_build_flags eph_controller_testing)\n"
            "add_library(eph_controller_testing test_world.cc)\n")
        out = self.assert_caught(files, "webhook", "pkg/webhook/CMakeLists.txt:5")
        self.assertIn("eph_webhook links eph_controller, which links eph_forge "
                      "(pkg/controller/CMakeLists.txt:2)", out)
        self.assertNotIn("[state]", out)  # a *_testing library is exempt

    def test_one_bad_include_is_reported_once(self):
        files = dict(CLEAN)
        files["pkg/state/store.h"] = '#pragma once\n#include "pkg/base/clock.h"\n#include "pkg/names/names.h"\n'
        files["pkg/names/names.h"] = "#pragma once\n"
        files["pkg/state/sqlite_store.cc"] = '#include "pkg/state/store.h"\n'
        rc, out = self.run_tree(files)
        self.assertEqual(rc, 1, out)
        self.assertEqual(out.count("[state]"), 1, out)
        self.assertIn("pkg/state/store.h:3: [state]", out)

    def test_ephd_downcast_enqueue_adapter_and_internals(self):
        files = dict(CLEAN)
        files["cmd/ephd/daemon.cc"] = (
            '#include "pkg/providers/kubernetes/readiness_cache.h"\n'
            '#include "pkg/workkey/work_key.h"\n'
            "class Adapter final : public controller::EnvironmentDatabases {};\n"
            "void Stop(P* p) { if (auto* k = dynamic_cast<K*>(p)) k->Stop(); }\n")
        out = self.assert_caught(files, "cmd-internals", "cmd/ephd/daemon.cc:1")
        self.assertIn("cmd/ephd/daemon.cc:2: [cmd-enqueue]", out)
        self.assertIn("cmd/ephd/daemon.cc:3: [cmd-adapter]", out)
        self.assertIn("cmd/ephd/daemon.cc:4: [cmd-downcast]", out)

    def test_controller_record_outside_the_controller(self):
        files = dict(CLEAN)
        files["pkg/api/api.cc"] = "void F(Environment& e) {\n  e.spec_json = \"{}\";\n}\n"
        self.assert_caught(files, "record", "pkg/api/api.cc:2")
        files = dict(CLEAN)
        files["cmd/ephd/main.cc"] = '#include "pkg/controller/env_record.h"\n'
        self.assert_caught(files, "record", "cmd/ephd/main.cc:1")

    def test_daemon_line_budget_is_a_ceiling(self):
        files = dict(CLEAN)
        files["cmd/ephd/daemon.cc"] = "int x;\n" * 450
        self.assert_caught(files, "cmd-lines", "cmd/ephd/daemon.cc:450")
        rc, out = self.run_tree(files, "cmd-lines cmd/ephd/daemon.cc 460  # being split\n")
        self.assertEqual(rc, 0, out)
        out = self.assert_caught(files, "cmd-lines", "cmd/ephd/daemon.cc:450",
                                 "cmd-lines cmd/ephd/daemon.cc 440  # being split\n")
        self.assertIn("it grew", out)

    def test_allowlist_excuses_exactly_its_lines_and_must_shrink(self):
        files = dict(CLEAN)
        files["pkg/state/store.cc"] = '#include "pkg/forge/forge.h"\n'
        rc, out = self.run_tree(files, "state pkg/state/store.cc pkg/forge  # being fixed\n")
        self.assertEqual(rc, 0, out)
        self.assertIn("1 allow-listed", out)
        # Fixed, but still listed: the stale line fails the check.
        rc, out = self.run_tree(CLEAN, "state pkg/state/store.cc pkg/forge  # being fixed\n")
        self.assertEqual(rc, 1, out)
        self.assertIn("no longer happens", out)
        # An entry without a reason is refused.
        rc, out = self.run_tree(files, "state pkg/state/store.cc pkg/forge\n")
        self.assertEqual(rc, 2, out)

    def test_comments_strings_and_tests_do_not_count(self):
        files = dict(CLEAN)
        files["pkg/state/store.cc"] = (
            '#include "pkg/state/store.h"\n'
            '// #include "pkg/forge/forge.h"\n'
            '/*\n#include "pkg/forge/forge.h"\n*/\n')
        files["pkg/state/store_test.cc"] = '#include "pkg/controller/work_key.h"\n'
        files["pkg/webhook/fake_forge_user.cc"] = '#include "pkg/forge/forge.h"\n'
        files["pkg/state/store_fuzz.cc"] = '#include "pkg/forge/forge.h"\n'
        rc, out = self.run_tree(files)
        self.assertEqual(rc, 0, out)

    def test_empty_tree_is_an_error_not_a_pass(self):
        rc, out = self.run_tree({"README": "nothing here\n"})
        self.assertEqual(rc, 2, out)

    def test_real_tree_has_the_walls_the_doc_names(self):
        # The rule ids the checker prints are the ones docs/architecture.md explains.
        with open(os.path.join(SOURCE, "docs", "architecture.md"), encoding="utf-8") as fh:
            doc = fh.read()
        for rule in ("state", "webhook", "providers", "cli", "record", "cmd-downcast",
                     "cmd-enqueue", "cmd-adapter", "cmd-internals", "cmd-lines"):
            self.assertIn(f"`{rule}`", doc, rule)


class CxxScanTest(unittest.TestCase):
    def test_raw_strings_digit_separators_and_comments(self):
        text = textwrap.dedent('''\
            int a = 1'000'000; int b = 0x1'F;
            auto s = R"({"x": "}"})"; // }
            char c = '}'; /* { */ int d;
            ''')
        code = cxx_scan.code_only(text)
        self.assertEqual(code.count("{"), code.count("}"))
        self.assertNotIn("x", code.split("\n")[1])
        self.assertIn("int d;", code)
        self.assertEqual(len(code), len(text))

    def test_includes_skip_comments(self):
        text = '#include "pkg/a/b.h"\n// #include "pkg/c/d.h"\n/* #include "pkg/e/f.h" */\n'
        self.assertEqual(cxx_scan.includes(text), [(1, "pkg/a/b.h")])


class CodeShapeTest(unittest.TestCase):
    """bench/code_shape.py's function finder, which shares the scanner."""

    def functions(self, text):
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "code_shape", os.path.join(SOURCE, "bench", "code_shape.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return [(name, first, last) for name, first, last in module.functions(text)]

    def test_finds_definitions_not_blocks_lambdas_or_initialisers(self):
        text = textwrap.dedent("""\
            namespace a {
            const std::vector<int> kX = {1, 2};
            Foo::Foo(int x, const std::string& s = {})
                : x_([&] { return x; }()), y_{x} {
              if (x) { Bar(); }
            }
            auto Baz() -> std::function<void(int)> { return [](int) {}; }
            bool operator==(const A& a, const A& b) noexcept { return true; }
            extern "C" int Entry(const char* s) {
              return 0;
            }
            class C {
             public:
              void M() const override {
                struct L { void N() {} };
              }
            };
            }  // namespace a
            """)
        self.assertEqual(self.functions(text), [
            ("Foo::Foo", 3, 6), ("Baz", 7, 7), ("operator==", 8, 8), ("Entry", 9, 11),
            ("C::M", 14, 16)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
