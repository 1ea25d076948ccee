// ipc/cli.hpp: the command line every tool shares (CLI11).
//
//   CLI::App app{"what the tool demonstrates", "procinfo"};
//   ipc::setup(app, "procinfo states");   // --version, -x/--explain, an example in --help
//   app.add_option(...);
//   ipc::parse(app, argc, argv);          // --help/--version exit 0, usage errors exit 2
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace ipc {

// "0.1.0": the project version, as --version prints it.
[[nodiscard]] std::string_view version() noexcept;

// Adds --version, -x/--explain (narrate each system call on stderr) and an example footer.
void setup(CLI::App& app, std::string_view example);

// Parses the command line. --help and --version print through ipc::print (so a failed write is
// reported, exit 1) and exit 0; anything else wrong
// is a usage error: one line naming it, "Run with --help for more.", exit 2.
void parse(CLI::App& app, int argc, char** argv);

// An option that takes a size ("64K", "1M") or a duration ("250ms", "2s").
// The variable keeps its default when the option is not given.
CLI::Option* add_size_option(CLI::App& app, const std::string& name, std::uint64_t& value,
                             const std::string& description);
CLI::Option* add_duration_option(CLI::App& app, const std::string& name,
                                 std::chrono::nanoseconds& value, const std::string& description);

}  // namespace ipc
