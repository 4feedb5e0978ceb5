#pragma once

// The training options that `train` and `lr-find` share (cmd_train.cpp): one list, one parser.

#include "base/result.h"
#include "training/training.h"

#include <QStringList>

class QCommandLineParser;

namespace ifs::cli {

enum class TrainOptionsFor {
    Train,
    LrFind, ///< the options of a run's schedule, validation and folder are hidden (and refused)
};

/// Adds train's options to `parser`; for lr-find without its --json and with
/// trainOnlyOptions() hidden from the help.
void addTrainOptions(QCommandLineParser &parser, TrainOptionsFor purpose = TrainOptionsFor::Train);
/// The options that only a training run uses: its schedule, epochs, validation, folder, resume.
const QStringList &trainOnlyOptions();
/// `--pretrained` with its optional value made explicit (QCommandLineParser needs one).
QStringList withPretrainedValue(const QStringList &args);
/// The TrainConfig the options ask for (before TrainConfig::validate()); an error names the option
/// and the value it cannot take.
Result<TrainConfig> trainConfigFromOptions(const QCommandLineParser &parser);

} // namespace ifs::cli
