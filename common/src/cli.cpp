#include "ipc/cli.hpp"

#include <fmt/format.h>

#include <cstdlib>

#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/output.hpp"
#include "ipc/units.hpp"

namespace ipc {

std::string_view version() noexcept { return IPCKIT_VERSION; }

void setup(CLI::App& app, std::string_view example) {
    app.set_version_flag("--version", fmt::format("{} (ipckit) {}", app.get_name(), version()),
                         "Print the version and exit");
    app.add_flag_callback(
        "-x,--explain", [] { set_explain(true); },
        "Narrate each system call on stderr as it happens: [pid] call(args) = result");
    app.footer(fmt::format("Example:\n  {}", example));
}

void parse(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        print(app.help());  // checked: `tool --help >/dev/full` fails (exit 1), as coreutils' do
        std::exit(0);
    } catch (const CLI::CallForAllHelp&) {
        print(app.help("", CLI::AppFormatMode::All));
        std::exit(0);
    } catch (const CLI::CallForVersion& e) {
        say("{}", e.what());
        std::exit(0);
    } catch (const CLI::ParseError& e) {
        usage_error(e.what());
    }
}

namespace {
// "--size" from "-s,--size": the spelling a usage error names.
std::string long_name(const std::string& names) { return names.substr(names.rfind(',') + 1); }
}  // namespace

CLI::Option* add_size_option(CLI::App& app, const std::string& name, std::uint64_t& value,
                             const std::string& description) {
    auto* opt = app.add_option_function<std::string>(
        name,
        [&value, label = long_name(name)](const std::string& text) {
            try {
                value = parse_size(text);
            } catch (const std::invalid_argument& e) {
                throw CLI::ValidationError(fmt::format("{}: {}", label, e.what()));
            }
        },
        description);
    opt->type_name("SIZE")->default_str(format_size(value));
    return opt;
}

CLI::Option* add_duration_option(CLI::App& app, const std::string& name,
                                 std::chrono::nanoseconds& value, const std::string& description) {
    auto* opt = app.add_option_function<std::string>(
        name,
        [&value, label = long_name(name)](const std::string& text) {
            try {
                value = parse_duration(text);
            } catch (const std::invalid_argument& e) {
                throw CLI::ValidationError(fmt::format("{}: {}", label, e.what()));
            }
        },
        description);
    opt->type_name("DURATION")->default_str(format_duration(value));
    return opt;
}

}  // namespace ipc
