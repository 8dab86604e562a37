// Word lists for environment names. Short, common, inoffensive English words of at most 11
// letters, lowercase a-z only, no duplicates (checked by names_test).
#include "pkg/names/words.h"

namespace eph::names {

const std::vector<std::string_view>& Adjectives() {
  static const auto* words = new std::vector<std::string_view>{
    "able", "agile", "airy", "amber", "ample", "ancient", "arctic", "autumn", "azure", "balmy",
    "blazing", "blissful", "bold", "bouncy", "brave", "breezy", "bright", "brisk", "bronze",
    "bubbly", "busy", "calm", "candid", "careful", "charming", "cheery", "chilly", "classic",
    "clear", "clever", "cloudy", "coastal", "coral", "cosmic", "cozy", "crimson", "crisp",
    "crystal", "curious", "dandy", "dapper", "daring", "dazzling", "deep", "dewy", "dreamy",
    "dusky", "eager", "early", "earnest", "easy", "electric", "elegant", "emerald", "endless",
    "epic", "even", "fabled", "fair", "faithful", "famous", "fancy", "fast", "fearless", "festive",
    "fiery", "fine", "firm", "floral", "fluent", "fluffy", "flying", "fond", "frank", "free",
    "fresh", "friendly", "frosty", "frozen", "fuzzy", "gallant", "gentle", "giant", "gilded",
    "glad", "gleaming", "glossy", "glowing", "golden", "graceful", "grand", "grassy", "great",
    "green", "happy", "hardy", "hazy", "healthy", "hearty", "helpful", "hidden", "hollow",
    "honest", "hopeful", "humble", "humming", "icy", "ideal", "indigo", "ivory", "jade", "jazzy",
    "jolly", "joyful", "jumbo", "keen", "kind", "kindly", "lavish", "lemon", "level", "limber",
    "little", "lively", "lofty", "loyal", "lucky", "lunar", "lush", "magic", "major", "marble",
    "mellow", "merry", "mighty", "mild", "misty", "modern", "modest", "mossy", "nautical", "neat",
    "nifty", "nimble", "noble", "northern", "novel", "oaken", "odd", "olive", "open", "orange",
    "pastel", "patient", "peaceful", "pearly", "perfect", "placid", "plucky", "plush", "polished",
    "polite", "prime", "proud", "quaint", "quick", "quiet", "quirky", "radiant", "rainy", "rapid",
    "rare", "ready", "regal", "relaxed", "rich", "robust", "rosy", "round", "royal", "ruby",
    "rugged", "rustic", "sage", "sandy", "scenic", "serene", "shady", "sharp", "shiny", "silent",
    "silky", "silver", "simple", "sleek", "smart", "smooth", "snowy", "snug", "soft", "solar",
    "solid", "sonic", "sparkly", "speedy", "spicy", "spotted", "spring", "spry", "stable",
    "starry", "steady", "stellar", "still", "stormy", "sturdy", "summer", "sunlit", "sunny",
    "super", "sweet", "swift", "tall", "tame", "teal", "tender", "thrifty", "tidy", "timely",
    "tiny", "topaz", "tranquil", "tropical", "true", "trusty", "twinkly", "upbeat", "urban",
    "valiant", "vast", "velvet", "violet", "vivid", "wandering", "warm", "wavy", "whole", "wild",
    "windy", "winter", "wise", "witty", "wooden", "woven", "young", "zany", "zesty",
  };
  return *words;
}

const std::vector<std::string_view>& Nouns() {
  static const auto* words = new std::vector<std::string_view>{
    "acorn", "anchor", "apple", "arrow", "aspen", "aster", "atlas", "aurora", "badger", "bamboo",
    "bay", "beacon", "bear", "beaver", "bird", "bison", "blossom", "bluff", "bobcat", "boulder",
    "breeze", "brook", "bubble", "butterfly", "cabin", "canal", "canopy", "canyon", "cape",
    "cardinal", "caribou", "cascade", "cedar", "cherry", "cinder", "citrus", "cliff", "cloud",
    "clover", "cobalt", "comet", "condor", "coral", "cosmos", "cougar", "cove", "coyote", "crane",
    "creek", "cricket", "crow", "cypress", "daisy", "dawn", "deer", "delta", "desert", "dingo",
    "dolphin", "dove", "dragon", "drift", "dune", "dusk", "eagle", "echo", "egret", "elm", "ember",
    "fable", "falcon", "falls", "feather", "fern", "field", "fig", "finch", "fire", "firefly",
    "fjord", "flame", "flint", "flower", "forest", "fox", "frost", "galaxy", "garden", "gazelle",
    "gecko", "gem", "geyser", "ginger", "glacier", "glade", "glow", "granite", "grove", "gull",
    "harbor", "hare", "harvest", "hawk", "hazel", "heath", "hedge", "heron", "hill", "hollow",
    "horizon", "hummingbird", "ibis", "iris", "island", "ivy", "jaguar", "jasmine", "jay",
    "juniper", "kelp", "kestrel", "kite", "koala", "lagoon", "lake", "lantern", "larch", "lark",
    "leaf", "lemur", "lichen", "lily", "lion", "llama", "lotus", "lynx", "magnet", "mango",
    "maple", "marble", "marsh", "meadow", "meadowlark", "mesa", "meteor", "mint", "mirage", "mole",
    "moon", "moose", "moss", "mountain", "nebula", "nectar", "nest", "newt", "nova", "oak",
    "oasis", "ocean", "onyx", "opal", "orbit", "orca", "orchid", "osprey", "otter", "owl", "panda",
    "panther", "parrot", "pasture", "peach", "peak", "pebble", "pelican", "pepper", "petal",
    "pine", "planet", "plateau", "plum", "pond", "poppy", "prairie", "prism", "puffin", "quail",
    "quartz", "quill", "rain", "rainbow", "raven", "reed", "reef", "rhythm", "ridge", "ripple",
    "river", "robin", "rock", "rose", "saffron", "sage", "salmon", "sapphire", "sea", "seal",
    "sequoia", "shadow", "shell", "shore", "sierra", "sky", "snow", "spark", "sparrow", "spring",
    "sprout", "spruce", "squirrel", "star", "stone", "stork", "stream", "summit", "sun", "sunbeam",
    "swan", "thicket", "thistle", "thunder", "tide", "tiger", "timber", "topaz", "trail", "tree",
    "tulip", "tundra", "valley", "vapor", "violet", "vista", "volcano", "walnut", "walrus",
    "warbler", "wave", "whale", "wildflower", "willow", "wind", "wolf", "wren", "yak", "yarrow",
    "zebra", "zephyr",
  };
  return *words;
}

}  // namespace eph::names
