#include "common/cli.h"

#include <cstdlib>
#include <iostream>

#include "common/grpc_server.h"
#include "common/internal_tls.h"
#include "common/json.h"

namespace examiso::cli {

int fail(const Error& error) {
  std::cerr << pretty_json(error.to_json()) << std::endl;
  return error.kind().exit_code;
}

Command::Command(const std::string& binary, const std::string& description, std::string service)
    : app_(description, binary), service_(std::move(service)) {
  app_.require_subcommand(1);
  app_.add_option("--address", address_, "host:port of the " + service_ + " service (default: from the config)");
  app_.add_option("--config", config_path_, "configuration file (default: $EXAMISO_CONFIG, else built-in defaults)");
}

CLI::App* Command::subcommand(const std::string& name, const std::string& description, std::function<Json()> action) {
  CLI::App* sub = app_.add_subcommand(name, description);
  sub->fallthrough();  // --address and --config after the subcommand too, as people type them
  actions_[sub] = std::move(action);
  return sub;
}

std::shared_ptr<grpc::Channel> Command::channel() {
  if (!channel_) channel_ = make_channel(address_, service_);
  return channel_;
}

int Command::run(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!is_valid_utf8(argv[i]))
      return fail(Error("INVALID_USAGE", "argument " + std::to_string(i) + " is not valid UTF-8"));
  }
  if (const char* env = std::getenv("EXAMISO_CONFIG")) config_path_ = env;
  try {
    app_.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app_.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app_.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(Error("INVALID_USAGE", e.what(), Json{{"usage", "run with --help"}}));
  }
  try {
    const Config config = Config::load(config_path_);
    if (address_.empty()) address_ = config.str(service_ + ".address");
    internal_tls::configure(config, "operator");
    timeout_ = std::chrono::milliseconds(config.integer("grpc.call_timeout_ms"));
    for (auto& [sub, action] : actions_) {
      if (sub->parsed()) {
        // A bare string (e.g. `token --raw`) prints as plain text for shell use.
        const Json out = action();
        std::cout << (out.is_string() ? out.get<std::string>() : pretty_json(out)) << std::endl;
        return 0;
      }
    }
    return fail(Error("INVALID_USAGE", "a subcommand is required"));
  } catch (const Error& e) {
    return fail(e);
  } catch (const std::exception& e) {
    return fail(Error("INTERNAL_ERROR", e.what()));
  }
}

}  // namespace examiso::cli
