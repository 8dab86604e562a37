// The adjective and noun lists behind `{words}` in environment names.
#pragma once

#include <string_view>
#include <vector>

namespace eph::names {

const std::vector<std::string_view>& Adjectives();
const std::vector<std::string_view>& Nouns();

}  // namespace eph::names
