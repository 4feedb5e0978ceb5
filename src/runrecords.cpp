// A run's records in its folder (metrics.csv, steps.csv) and in its checkpoints (metrics['history'],
// metrics['step_log']), written and read through one table of columns.

#include "runrecords.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QTextStream>

#include <cstring>
#include <vector>

namespace ifs {

using ckpt::Value;

namespace {

/// One column of metrics.csv (and one key of a history dict). `get` and `set` work in the file's
/// units: accuracies in percent there, fractions in EpochRecord.
struct EpochColumn
{
    const char *name;
    bool integer;  ///< a Python int in the history dict
    char format;   ///< QString::arg's format in metrics.csv
    int precision;
    double (*get)(const EpochRecord &);
    void (*set)(EpochRecord &, double);
};

constexpr EpochColumn kEpochColumns[] = {
    {"epoch", true, 'f', 0, [](const EpochRecord &r) { return double(r.epoch); },
     [](EpochRecord &r, double v) { r.epoch = int(v); }},
    {"step", true, 'f', 0, [](const EpochRecord &r) { return double(r.step); },
     [](EpochRecord &r, double v) { r.step = qint64(v); }},
    {"train_loss", false, 'g', 9, [](const EpochRecord &r) { return r.trainLoss; },
     [](EpochRecord &r, double v) { r.trainLoss = v; }},
    {"train_acc", false, 'f', 4, [](const EpochRecord &r) { return r.trainAccuracy * 100.0; },
     [](EpochRecord &r, double v) { r.trainAccuracy = v / 100.0; }},
    {"val_loss", false, 'g', 9, [](const EpochRecord &r) { return r.valLoss; },
     [](EpochRecord &r, double v) { r.valLoss = v; }},
    {"val_acc", false, 'f', 4, [](const EpochRecord &r) { return r.valAccuracy * 100.0; },
     [](EpochRecord &r, double v) { r.valAccuracy = v / 100.0; }},
    {"lr", false, 'g', 9, [](const EpochRecord &r) { return r.lr; },
     [](EpochRecord &r, double v) { r.lr = v; }},
    {"seconds", false, 'f', 3, [](const EpochRecord &r) { return r.seconds; },
     [](EpochRecord &r, double v) { r.seconds = v; }},
    {"images_per_s", false, 'f', 1, [](const EpochRecord &r) { return r.imagesPerSecond; },
     [](EpochRecord &r, double v) { r.imagesPerSecond = v; }},
};

/// steps.csv's columns, also the order of a step_log row.
constexpr const char *kStepColumns[] = {"step", "epoch", "loss", "lr"};
constexpr int kStepWidth = int(std::size(kStepColumns));

double stepField(const StepRecord &s, int column)
{
    switch (column) {
    case 0: return double(s.step);
    case 1: return double(s.epoch);
    case 2: return s.loss;
    default: return s.lr;
    }
}

StepRecord stepFromFields(const double *fields)
{
    return {qint64(fields[0]), int(fields[1]), fields[2], fields[3]};
}

template<size_t N>
QByteArray csvHeader(const char *const (&names)[N])
{
    QByteArray line;
    for (const char *name : names)
        line += (line.isEmpty() ? "" : ",") + QByteArray(name);
    return line + '\n';
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
        if (!line.trimmed().isEmpty())
            csv.rows.append(line.split(u','));
    }
    return csv;
}

} // namespace

QByteArray metricsCsv(const QList<EpochRecord> &history)
{
    const char *names[std::size(kEpochColumns)];
    for (size_t i = 0; i < std::size(kEpochColumns); ++i)
        names[i] = kEpochColumns[i].name;
    QByteArray text = csvHeader(names);
    for (const EpochRecord &r : history) {
        QString row;
        for (const EpochColumn &c : kEpochColumns) {
            if (!row.isEmpty())
                row += u',';
            row += QString::number(c.get(r), c.format, c.precision);
        }
        text += row.toUtf8() + '\n';
    }
    return text;
}

QByteArray stepsCsvHeader()
{
    return csvHeader(kStepColumns);
}

QByteArray stepsCsvRow(const StepRecord &s)
{
    QString row;
    for (int i = 0; i < kStepWidth; ++i) {
        if (i > 0)
            row += u',';
        row += i < 2 ? QString::number(qint64(stepField(s, i))) : QString::number(stepField(s, i), 'g', 9);
    }
    return row.toUtf8() + '\n';
}

Value historyToValue(const QList<EpochRecord> &history)
{
    QList<Value> rows;
    for (const EpochRecord &r : history) {
        Value::Entries entries;
        for (const EpochColumn &c : kEpochColumns) {
            const double v = c.get(r);
            entries.append({Value(QString::fromLatin1(c.name)), c.integer ? Value(qint64(v)) : Value(v)});
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
        for (const EpochColumn &c : kEpochColumns)
            c.set(r, row.value(QString::fromLatin1(c.name)).toDouble());
        history.append(r);
    }
    return history;
}

Value stepLogToValue(const QList<StepRecord> &log)
{
    std::vector<double> flat;
    flat.reserve(size_t(log.size()) * kStepWidth);
    for (const StepRecord &s : log)
        for (int i = 0; i < kStepWidth; ++i)
            flat.push_back(stepField(s, i));
    const QByteArray bytes(reinterpret_cast<const char *>(flat.data()),
                           qsizetype(flat.size() * sizeof(double)));
    return Value(ckpt::Tensor::fromBytes(ckpt::DType::Float64, bytes, {qint64(log.size()), kStepWidth}));
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
    const qint64 rows = t.shape[0];
    const char *p = bytes->constData();
    double fields[kStepWidth];
    for (qint64 i = 0; i < rows; ++i) {
        for (int j = 0; j < kStepWidth; ++j) {
            if (dtype == ckpt::DType::Float64) {
                std::memcpy(&fields[j], p, sizeof(double));
                p += sizeof(double);
            } else {
                float f;
                std::memcpy(&f, p, sizeof(float));
                fields[j] = f;
                p += sizeof(float);
            }
        }
        log.append(stepFromFields(fields));
    }
    return log;
}

Result<RunHistory> readRunHistory(const QString &folder)
{
    RunHistory history;
    history.folder = folder;
    history.name = QFileInfo(folder).fileName();
    const QString metrics = QDir(folder).filePath(QStringLiteral("metrics.csv"));
    if (!QFileInfo::exists(metrics))
        return Error{QStringLiteral("“%1” is not a training run folder: it has no metrics.csv")
                         .arg(folder)};
    auto epochs = readCsv(metrics);
    if (!epochs)
        return epochs.error();
    for (const QStringList &row : epochs->rows) {
        EpochRecord r;
        for (const EpochColumn &c : kEpochColumns)
            c.set(r, epochs->at(row, c.name));
        history.epochs.append(r);
    }
    const QString steps = QDir(folder).filePath(QStringLiteral("steps.csv"));
    if (QFileInfo::exists(steps)) {
        auto log = readCsv(steps);
        if (!log)
            return log.error();
        for (const QStringList &row : log->rows) {
            double fields[kStepWidth];
            for (int j = 0; j < kStepWidth; ++j)
                fields[j] = log->at(row, kStepColumns[j]);
            history.steps.append(stepFromFields(fields));
        }
    }
    return history;
}

} // namespace ifs
