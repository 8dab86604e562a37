// Keeps docs/eph-yaml.md honest: the keys its "Keys" tables list are exactly the keys the parser
// accepts, each of them really is accepted, and every complete example in it is valid.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "pkg/config/config.h"
#include "pkg/config/text.h"

namespace eph::config {
namespace {

using ::testing::IsEmpty;

std::string ReadDoc() {
  std::ifstream in(std::filesystem::path(EPH_SOURCE_DIR) / "docs/eph-yaml.md");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Key paths from the tables of the "## Keys" section: the first cell of each row, in backticks.
std::vector<std::string> DocumentedKeys(const std::string& doc) {
  std::vector<std::string> keys;
  bool in_keys_section = false;
  for (std::string_view line : text::Split(doc, '\n')) {
    if (line.starts_with("## ")) in_keys_section = line == "## Keys";
    if (!in_keys_section || !line.starts_with("| `")) continue;
    std::string_view cell = line.substr(3);
    size_t end = cell.find('`');
    if (end == std::string_view::npos) continue;
    keys.emplace_back(cell.substr(0, end));
  }
  return keys;
}

// A YAML snippet that sets `path` (e.g. "triggers[].labels") to a placeholder value.
std::string SnippetFor(std::string_view path) {
  std::vector<std::string_view> parts = text::Split(path, '.');
  std::string out;
  std::string indent;
  bool in_list_item = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view name = parts[i];
    bool list = name.ends_with("[]");
    if (list) name.remove_suffix(2);
    std::string prefix = in_list_item ? indent.substr(0, indent.size() - 2) + "- " : indent;
    if (i + 1 == parts.size()) {
      out += prefix + std::string(name) + ": x\n";
      break;
    }
    out += prefix + std::string(name) + ":\n";
    indent += list ? "    " : "  ";
    in_list_item = list;
  }
  if (!path.starts_with("version")) out = "version: '1.0'\n" + out;
  if (!path.starts_with("name")) out = "name: app\n" + out;
  return out;
}

std::vector<std::string> UnknownKeyMessages(const std::string& yaml) {
  std::vector<std::string> messages;
  for (const Diagnostic& d : ParseConfig(yaml).diagnostics) {
    if (d.message.find("unknown key") != std::string::npos) {
      messages.push_back(FormatDiagnostic(d));
    }
  }
  return messages;
}

TEST(DocsTest, DocumentsExactlyTheKeysTheParserAccepts) {
  std::vector<std::string> documented = DocumentedKeys(ReadDoc());
  ASSERT_FALSE(documented.empty()) << "no key tables found under \"## Keys\" in eph-yaml.md";
  std::set<std::string> documented_set(documented.begin(), documented.end());
  EXPECT_EQ(documented_set.size(), documented.size()) << "a key is documented twice";

  std::set<std::string> known;
  for (std::string_view path : KnownKeyPaths()) known.emplace(path);
  for (const std::string& key : known) {
    EXPECT_TRUE(documented_set.count(key)) << "`" << key << "` is accepted but not documented";
  }
  for (const std::string& key : documented_set) {
    EXPECT_TRUE(known.count(key)) << "`" << key << "` is documented but not accepted";
  }
}

TEST(DocsTest, EveryDocumentedKeyIsAccepted) {
  for (const std::string& key : DocumentedKeys(ReadDoc())) {
    std::string snippet = SnippetFor(key);
    EXPECT_THAT(UnknownKeyMessages(snippet), IsEmpty()) << "for `" << key << "`:\n" << snippet;
  }
}

TEST(DocsTest, SnippetCheckCatchesAnUndocumentedKey) {
  // Guards the test above against passing vacuously.
  EXPECT_EQ(UnknownKeyMessages(SnippetFor("environment.not_a_key")).size(), 1u);
  EXPECT_EQ(UnknownKeyMessages(SnippetFor("database.instances[].template.seed.sql")).size(), 1u);
}

TEST(DocsTest, CompleteExamplesAreValid) {
  std::string doc = ReadDoc();
  int complete_examples = 0;
  std::string block;
  bool in_yaml = false;
  for (std::string_view line : text::Split(doc, '\n')) {
    if (!in_yaml && line == "```yaml") {
      in_yaml = true;
      block.clear();
      continue;
    }
    if (in_yaml && line == "```") {
      in_yaml = false;
      // Fragments illustrate one section; complete files start with `version:`.
      if (!block.starts_with("version:")) continue;
      ++complete_examples;
      ValidationResult result = ParseConfig(block, "example.yaml");
      EXPECT_TRUE(result.ok()) << FormatDiagnostics(result.diagnostics) << block;
      continue;
    }
    if (in_yaml) block += std::string(line) + "\n";
  }
  EXPECT_GE(complete_examples, 2);
}

// The "## Errors" section shows a broken file and what `eph validate` prints for it; the two
// must agree.
TEST(DocsTest, ErrorsExampleShowsTheRealOutput) {
  std::string doc = ReadDoc();
  size_t section = doc.find("\n## Errors\n");
  ASSERT_NE(section, std::string::npos);
  size_t yaml_start = doc.find("```yaml\n", section);
  ASSERT_NE(yaml_start, std::string::npos);
  yaml_start += 8;
  size_t yaml_end = doc.find("```\n", yaml_start);
  size_t console_start = doc.find("```console\n", yaml_end);
  ASSERT_NE(console_start, std::string::npos);
  console_start += 11;
  size_t console_end = doc.find("```\n", console_start);
  ASSERT_NE(console_end, std::string::npos);

  ValidationResult result = ParseConfig(doc.substr(yaml_start, yaml_end - yaml_start), "eph.yaml");
  EXPECT_EQ(FormatDiagnostics(result.diagnostics),
            doc.substr(console_start, console_end - console_start));
}

}  // namespace
}  // namespace eph::config
