// Subcommand registry: each apps/cmd_*.cpp registers itself with SM_REGISTER_COMMAND, so adding
// a subcommand never touches main.cpp. A command's callback reports failure by throwing
// sm::Error (main prints one line "spinemark <cmd>: error: ..." and exits 1) or by calling
// command_set_exit_code().
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace sm::app {

using CommandSetup = std::function<void(CLI::App& root)>;

// Called during static initialisation; `order` sorts the --help listing.
bool command_register(int order, CommandSetup setup);
void command_set_exit_code(int code);
int command_exit_code();

}  // namespace sm::app

#define SM_REGISTER_COMMAND(id, order, setup_fn) \
  static const bool sm_command_registered_##id = ::sm::app::command_register(order, setup_fn)
