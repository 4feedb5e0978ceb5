#pragma once

// TensorBoard's event files, written and read without TensorFlow or protobuf: TFRecord framing
// (a uint64 length, the masked CRC-32C of the length, the data, the masked CRC-32C of the data)
// around hand-encoded `Event` protobufs (tensorboard/compat/proto/event.proto, summary.proto,
// tensor.proto), as torch.utils.tensorboard.SummaryWriter writes them: the first record holds
// file_version "brain.Event:2", scalars are Summary.Value.simple_value, text is the text
// plugin's string tensor. `tensorboard --logdir runs/` shows a run folder of ours beside Python
// runs; the overlay of earlier runs reads a Python run's event files when it has no metrics.csv.

#include "base/atomicfile.h"
#include "base/result.h"
#include "training/training.h"

#include <QByteArray>
#include <QList>
#include <QString>

#include <cstdint>

namespace ifs {

/// CRC-32C (Castagnoli), as TFRecord frames use it.
uint32_t crc32c(const char *data, size_t size);
/// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t maskedCrc32c(const char *data, size_t size);
/// One TFRecord: length, masked CRC of the length, `data`, masked CRC of the data.
QByteArray tfRecord(const QByteArray &data);

/// The protobuf bytes of an Event with a scalar (Summary.Value.simple_value, a float32 as
/// SummaryWriter.add_scalar writes it) or a text (the text plugin: tag + "/text_summary", a
/// DT_STRING tensor of shape [1], as SummaryWriter.add_text writes it).
QByteArray scalarEvent(const QString &tag, double value, qint64 step, double wallTime);
QByteArray textEvent(const QString &tag, const QString &text, qint64 step, double wallTime);

/// Appends events to one new file, a record at a time: each record is in the file when add*()
/// returns (TensorBoard reads the files while they grow), and a failed write leaves the file at
/// its last whole record and says why.
class TensorBoardWriter
{
public:
    /// Creates "events.out.tfevents.<seconds>.<host>.<pid>.<n><suffix>" in `folder` (an
    /// existing folder), named as TensorBoard's EventFileWriter names it, holding its first
    /// record (file_version "brain.Event:2").
    Status open(const QString &folder, const QString &suffix = {});
    bool isOpen() const { return m_file.isOpen(); }
    QString path() const { return m_file.path(); }
    /// The wall time defaults to now (seconds since the epoch).
    Status addScalar(const QString &tag, double value, qint64 step, double wallTime = -1.0);
    Status addText(const QString &tag, const QString &text, qint64 step, double wallTime = -1.0);
    void close() { m_file.close(); }

private:
    AppendFile m_file;
};

/// One value of an event file: a scalar (simple_value, or a one-value float/double tensor as
/// new-style summaries hold it) or a text (the text plugin's string tensor).
struct TensorBoardValue
{
    double wallTime = 0.0;
    qint64 step = 0;
    QString tag;
    double value = 0.0;
    bool isText = false;
    QString text;
};

/// The values of one event file, in file order; the records' CRCs are checked. A last record
/// cut short (a file still being written) ends the list; a damaged one is an error naming the
/// file and the offset.
Result<QList<TensorBoardValue>> readTensorBoardFile(const QString &path);

/// The event files of `folder` (events.out.tfevents.*), in name order (their start times).
QStringList tensorBoardFiles(const QString &folder);

/// A run's history from the event files of its folder, for overlays of runs without metrics.csv
/// (Python runs). The tags are matched by their words: "loss", "acc", "lr"/"learning_rate",
/// "images_per_s"/"throughput"; "val"/"valid"/"test" name the validation side; "step", "batch"
/// or "iter" mark a per-step value (its step is the optimizer step), the others are per epoch
/// (their step is the epoch). Accuracies at most 1 are fractions, others percent. Our own tags:
/// train/loss_step and train/lr per step; train/loss, train/accuracy, val/loss, val/accuracy
/// per epoch; train/images_per_s at the epoch's last step. A later file's value for the same
/// tag and step replaces an earlier one (a resumed run). Fails when no file has such scalars.
Result<RunHistory> readTensorBoardHistory(const QString &folder);

/// Wraps `callbacks` so that the run also writes an event file in its folder (TrainStart's
/// history.folder, written by then): the
/// folder's config.json as text ("config") when the run starts, training loss and learning rate
/// per step, losses, accuracies (percent, as metrics.csv) and images/s per epoch. A failure to
/// write the events does not stop training: the run goes on without them, says so once through
/// `status`, and its finish message names the failure.
TrainCallbacks withTensorBoardEvents(const TrainCallbacks &callbacks);

} // namespace ifs
