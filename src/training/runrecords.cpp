// A run's records in its folder (metrics.csv, steps.csv) and in its checkpoints
// (metrics['history'], metrics['step_log']), written and read through one table of columns.

#include "training/runrecords.h"

#include "training/tensorboardwriter.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QTextStream>

#include <array>
#include <cstring>
#include <vector>

namespace ifs {

using ckpt::Value;

namespace {

/// One column of a record's CSV file, also one key of a history dict and one field of a
/// step_log row. `get` and `set` work in the file's units: accuracies in percent there, fractions
/// in EpochRecord.
template<typename R>
struct Column
{
    using Record = R;
    const char *name;
    bool integer; ///< an int in the file and in the history dict
    char format; ///< QString::number's format and precision for the others
    int precision;
    double (*get)(const R &);
    void (*set)(R &, double);

    QString text(const R &r) const
    {
        return integer ? QString::number(qint64(get(r)))
                       : QString::number(get(r), format, precision);
    }
};

/// metrics.csv and metrics['history'].
constexpr std::array<Column<EpochRecord>, 9> kEpochColumns{{
    {"epoch", true, 0, 0, [](const EpochRecord &r) { return double(r.epoch); },
     [](EpochRecord &r, double v) {
         r.epoch = int(v);
     }},
    {"step", true, 0, 0, [](const EpochRecord &r) { return double(r.step); },
     [](EpochRecord &r, double v) {
         r.step = qint64(v);
     }},
    {"train_loss", false, 'g', 9, [](const EpochRecord &r) { return r.trainLoss; },
     [](EpochRecord &r, double v) {
         r.trainLoss = v;
     }},
    {"train_acc", false, 'f', 4, [](const EpochRecord &r) { return r.trainAccuracy * 100.0; },
     [](EpochRecord &r, double v) {
         r.trainAccuracy = v / 100.0;
     }},
    {"val_loss", false, 'g', 9, [](const EpochRecord &r) { return r.valLoss; },
     [](EpochRecord &r, double v) {
         r.valLoss = v;
     }},
    {"val_acc", false, 'f', 4, [](const EpochRecord &r) { return r.valAccuracy * 100.0; },
     [](EpochRecord &r, double v) {
         r.valAccuracy = v / 100.0;
     }},
    {"lr", false, 'g', 9, [](const EpochRecord &r) { return r.lr; },
     [](EpochRecord &r, double v) {
         r.lr = v;
     }},
    {"seconds", false, 'f', 3, [](const EpochRecord &r) { return r.seconds; },
     [](EpochRecord &r, double v) {
         r.seconds = v;
     }},
    {"images_per_s", false, 'f', 1, [](const EpochRecord &r) { return r.imagesPerSecond; },
     [](EpochRecord &r, double v) {
         r.imagesPerSecond = v;
     }},
}};

/// steps.csv, and the order of a step_log row.
constexpr std::array<Column<StepRecord>, 4> kStepColumns{{
    {"step", true, 0, 0, [](const StepRecord &s) { return double(s.step); },
     [](StepRecord &s, double v) {
         s.step = qint64(v);
     }},
    {"epoch", true, 0, 0, [](const StepRecord &s) { return double(s.epoch); },
     [](StepRecord &s, double v) {
         s.epoch = int(v);
     }},
    {"loss", false, 'g', 9, [](const StepRecord &s) { return s.loss; },
     [](StepRecord &s, double v) {
         s.loss = v;
     }},
    {"lr", false, 'g', 9, [](const StepRecord &s) { return s.lr; },
     [](StepRecord &s, double v) {
         s.lr = v;
     }},
}};
constexpr qint64 kStepWidth = qint64(kStepColumns.size());

template<typename Columns>
QByteArray csvHeader(const Columns &columns)
{
    QByteArray line;
    for (const auto &c : columns)
        line += (line.isEmpty() ? "" : ",") + QByteArray(c.name);
    return line + '\n';
}

template<typename Columns>
QByteArray csvRow(const Columns &columns, const typename Columns::value_type::Record &record)
{
    QString line;
    for (const auto &c : columns)
        line += (line.isEmpty() ? QString() : QStringLiteral(",")) + c.text(record);
    return line.toUtf8() + '\n';
}

/// Rows of a CSV file with a header line: header → column index.
struct Csv
{
    QHash<QString, int> columns;
    QList<QStringList> rows;
    double at(const QStringList &row, const char *column) const
    {
        const int i = columns.value(QString::fromLatin1(column), -1);
        return i >= 0 && i < row.size() ? row[i].toDouble() : 0.0;
    }
};

Result<Csv> readCsv(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly | QIODevice::Text))
        return Error{QStringLiteral("cannot read “%1”: %2").arg(path, file.errorString())};
    Csv csv;
    QTextStream in(&file);
    const QStringList header = in.readLine().split(u',');
    for (int i = 0; i < header.size(); ++i)
        csv.columns.insert(header[i].trimmed(), i);
    while (!in.atEnd()) {
        const QString line = in.readLine();
        const QStringList cells = line.split(u',');
        // A row cut short (the last one, written when the power went) is no record.
        if (!line.trimmed().isEmpty() && cells.size() == header.size())
            csv.rows.append(cells);
    }
    return csv;
}

/// The records of a CSV file, by column name (a missing column reads as 0).
template<typename Columns>
QList<typename Columns::value_type::Record> recordsFromCsv(const Columns &columns, const Csv &csv)
{
    QList<typename Columns::value_type::Record> records;
    for (const QStringList &row : csv.rows) {
        typename Columns::value_type::Record r;
        for (const auto &c : columns)
            c.set(r, csv.at(row, c.name));
        records.append(r);
    }
    return records;
}

} // namespace

QByteArray metricsCsv(const QList<EpochRecord> &history)
{
    QByteArray text = csvHeader(kEpochColumns);
    for (const EpochRecord &r : history)
        text += csvRow(kEpochColumns, r);
    return text;
}

QByteArray stepsCsvHeader()
{
    return csvHeader(kStepColumns);
}

QByteArray stepsCsvRow(const StepRecord &s)
{
    return csvRow(kStepColumns, s);
}

Value historyToValue(const QList<EpochRecord> &history)
{
    QList<Value> rows;
    for (const EpochRecord &r : history) {
        Value::Entries entries;
        for (const auto &c : kEpochColumns) {
            const double v = c.get(r);
            entries.append(
                {Value(QString::fromLatin1(c.name)), c.integer ? Value(qint64(v)) : Value(v)});
        }
        rows.append(Value::dict(entries));
    }
    return Value::list(rows);
}

QList<EpochRecord> historyFromValue(const Value &list)
{
    QList<EpochRecord> history;
    for (const Value &row : list.items()) {
        EpochRecord r;
        for (const auto &c : kEpochColumns)
            c.set(r, row.value(QString::fromLatin1(c.name)).toDouble());
        history.append(r);
    }
    return history;
}

Value stepLogToValue(const QList<StepRecord> &log)
{
    std::vector<double> flat;
    flat.reserve(size_t(log.size() * kStepWidth));
    for (const StepRecord &s : log)
        for (const auto &c : kStepColumns)
            flat.push_back(c.get(s));
    const QByteArray bytes(reinterpret_cast<const char *>(flat.data()),
                           qsizetype(flat.size() * sizeof(double)));
    return Value(
        ckpt::Tensor::fromBytes(ckpt::DType::Float64, bytes, {qint64(log.size()), kStepWidth}));
}

QList<StepRecord> stepLogFromValue(const Value &value)
{
    QList<StepRecord> log;
    if (!value.isTensor())
        return log;
    const ckpt::Tensor t = value.toTensor();
    const ckpt::DType dtype = t.dtype();
    if (t.dim() != 2 || t.shape[1] != kStepWidth
        || (dtype != ckpt::DType::Float64 && dtype != ckpt::DType::Float32))
        return log;
    const Result<QByteArray> bytes = t.contiguousBytes();
    if (!bytes)
        return log;
    const char *p = bytes->constData();
    auto next = [&p, dtype]() {
        if (dtype == ckpt::DType::Float64) {
            double d;
            std::memcpy(&d, p, sizeof d);
            p += sizeof d;
            return d;
        }
        float f;
        std::memcpy(&f, p, sizeof f);
        p += sizeof f;
        return double(f);
    };
    for (qint64 i = 0; i < t.shape[0]; ++i) {
        StepRecord s;
        for (const auto &c : kStepColumns)
            c.set(s, next());
        log.append(s);
    }
    return log;
}

Result<RunHistory> readRunHistory(const QString &folder)
{
    RunHistory history;
    history.folder = folder;
    history.name = QFileInfo(folder).fileName();
    const QString metrics = QDir(folder).filePath(QStringLiteral("metrics.csv"));
    if (!QFileInfo::exists(metrics)) {
        // A Python run's folder, say: its TensorBoard event files tell the same curves.
        if (!tensorBoardFiles(folder).isEmpty())
            return readTensorBoardHistory(folder);
        return Error{
            QStringLiteral("“%1” is not a training run folder: it has no metrics.csv").arg(folder)};
    }
    auto epochs = readCsv(metrics);
    if (!epochs)
        return epochs.error();
    history.epochs = recordsFromCsv(kEpochColumns, epochs.value());
    const QString steps = QDir(folder).filePath(QStringLiteral("steps.csv"));
    if (QFileInfo::exists(steps)) {
        auto log = readCsv(steps);
        if (!log)
            return log.error();
        history.steps = recordsFromCsv(kStepColumns, log.value());
    }
    return history;
}

} // namespace ifs
