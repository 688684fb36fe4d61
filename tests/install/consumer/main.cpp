// Uses the installed headers and libraries: loads a config given as text.
#include <cstdio>

#include "config/loader.h"

int main() {
  const auto config = da::config::parse_config("optimizer: {lr: 0.5}\n", "consumer.yaml");
  std::printf("lr=%g name=%s\n", config.optimizer.lr, config.run.name.c_str());
  return config.optimizer.lr == 0.5 ? 0 : 1;
}
