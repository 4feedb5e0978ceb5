#pragma once

// A run's records as files hold them: metrics.csv and steps.csv in the run folder, and
// metrics['history'] and metrics['step_log'] in its checkpoints. One table of columns serves both
// writing and reading, so a name cannot drift between the writer and the reader.

#include "checkpoint/checkpointvalue.h"
#include "training/training.h"

#include <QByteArray>
#include <QList>

namespace ifs {

/// metrics.csv: a header and one row per epoch, accuracies in percent.
QByteArray metricsCsv(const QList<EpochRecord> &history);
/// steps.csv's header line ("step,epoch,loss,lr") and one of its rows.
QByteArray stepsCsvHeader();
QByteArray stepsCsvRow(const StepRecord &step);

/// metrics['history'] of a checkpoint: one dict per epoch with metrics.csv's columns as keys.
ckpt::Value historyToValue(const QList<EpochRecord> &history);
QList<EpochRecord> historyFromValue(const ckpt::Value &list);

/// metrics['step_log'] of a checkpoint: a float64 tensor of rows (step, epoch, loss, lr), compact
/// for the tens of thousands of steps of a long run. Reading also accepts float32; anything else
/// (or a wrong shape) gives an empty log.
ckpt::Value stepLogToValue(const QList<StepRecord> &log);
QList<StepRecord> stepLogFromValue(const ckpt::Value &value);

} // namespace ifs
