// ifstudio-cli inspect / repair / diff: checkpoints without Python, without running their code.
#include "commands.h"

#include "base/jsonwriter.h"
#include "checkpoint/checkpointfiles.h"
#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointrepair.h"
#include "checkpoint/checkpointsummary.h"
#include "checkpoint/checkpointwalk.h"
#include "checkpoint/checkpointwriter.h"
#include "checkpoint/safetensors.h"

#include <QCommandLineParser>
#include <QFile>
#include <QFileInfo>
#include <QLocale>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

namespace ifs::cli {

namespace {

using namespace ifs::ckpt;

/// One step of a key path: a str key, or an int (list index, int dict key).
struct PathStep
{
    bool isInt = false;
    qint64 index = 0;
    QString key;
};
using Path = QList<PathStep>;

QString pathText(const Path &path)
{
    QString out;
    for (const PathStep &step : path) {
        if (step.isInt)
            out += QStringLiteral("[%1]").arg(step.index);
        else
            out += (out.isEmpty() ? QString() : QStringLiteral(".")) + step.key;
    }
    return out.isEmpty() ? QStringLiteral("(root)") : out;
}

void writePath(JsonWriter &json, const Path &path)
{
    json.beginArray();
    for (const PathStep &step : path) {
        if (step.isInt)
            json.value(int64_t(step.index));
        else
            json.value(step.key);
    }
    json.endArray();
}

PathStep keyStep(const Value &key)
{
    if (key.isInt() || key.isBool())
        return {true, key.toInt(), {}};
    if (key.isString())
        return {false, 0, key.toString()};
    return {false, 0, keyText(key)};
}

QString humanBytes(qint64 bytes)
{
    return QLocale::c().formattedDataSize(bytes, 1, QLocale::DataSizeTraditionalFormat);
}

/// Walks a Value and reports its tensors and leaf values: the values a path of str and int
/// steps reaches (an inert object's state dict is looked into, its arguments are not), empty
/// containers as values.
struct Walker
{
    std::function<void(const Path &, const Tensor &)> onTensor;
    std::function<void(const Path &, const Value &)> onValue;

    void walk(const Value &root)
    {
        walkValues(root, [this](WalkPath steps, const Value &value) {
            if (steps.size() > 200)
                return WalkAction::SkipChildren; // the reader bounds nesting; a second fence
            if (!steps.empty()) {
                const WalkStep::Kind step = steps.back().kind;
                if (step == WalkStep::Kind::ObjectArgs || step == WalkStep::Kind::DictState
                    || (step == WalkStep::Kind::ObjectState && !value.isDict())) {
                    return WalkAction::SkipChildren;
                }
            }
            return visit(pathOf(steps), value);
        });
    }

private:
    static Path pathOf(WalkPath steps)
    {
        Path path;
        for (const WalkStep &step : steps) {
            if (step.kind == WalkStep::Kind::Item)
                path.append({true, step.index, {}});
            else if (step.kind == WalkStep::Kind::Entry)
                path.append(keyStep(*step.key));
            // An object's state adds no step: its attributes read as the object's keys.
        }
        return path;
    }

    WalkAction visit(const Path &path, const Value &value)
    {
        switch (value.kind()) {
        case Value::Kind::Tensor:
            onTensor(path, value.toTensor());
            return WalkAction::SkipChildren;
        case Value::Kind::Dict:
        case Value::Kind::OrderedDict:
        case Value::Kind::List:
        case Value::Kind::Tuple:
            if (value.size() == 0)
                onValue(path, value);
            return WalkAction::Continue;
        default:
            // Objects are values too; their state may still hold tensors (a pickled nn.Module).
            onValue(path, value);
            return WalkAction::Continue;
        }
    }
};

void writeValue(JsonWriter &json, const Value &value)
{
    switch (value.kind()) {
    case Value::Kind::None:
        json.null();
        break;
    case Value::Kind::Bool:
        json.value(value.toBool());
        break;
    case Value::Kind::Int:
        json.value(int64_t(value.toInt()));
        break;
    case Value::Kind::Float:
        json.value(value.toDouble());
        break;
    case Value::Kind::String:
    case Value::Kind::Device:
        json.value(value.toString());
        break;
    case Value::Kind::DType:
        json.value(dtypeName(value.toDType()));
        break;
    case Value::Kind::Size:
        json.beginArray();
        for (qint64 d : value.toSize())
            json.value(int64_t(d));
        json.endArray();
        break;
    case Value::Kind::Bytes:
        json.value(int64_t(value.toBytes().size()));
        break;
    default:
        json.null();
    }
}

QString valueText(const Value &value)
{
    if (value.isObject())
        return QStringLiteral("<%1.%2, not executed>")
            .arg(value.objectModule(), value.objectName());
    const QString text = scalarText(value);
    if (!text.isEmpty())
        return text;
    return value.isDict() ? QStringLiteral("{}") : QStringLiteral("[]");
}

QString jsonTypeName(const Value &value)
{
    switch (value.kind()) {
    case Value::Kind::None:
        return QStringLiteral("None");
    case Value::Kind::Bool:
        return QStringLiteral("bool");
    case Value::Kind::Int:
        return QStringLiteral("int");
    case Value::Kind::Float:
        return QStringLiteral("float");
    case Value::Kind::String:
        return QStringLiteral("str");
    case Value::Kind::Bytes:
        return QStringLiteral("bytes");
    case Value::Kind::Device:
        return QStringLiteral("torch.device");
    case Value::Kind::DType:
        return QStringLiteral("torch.dtype");
    case Value::Kind::Size:
        return QStringLiteral("torch.Size");
    case Value::Kind::Object:
        return QStringLiteral("object");
    default:
        return value.typeName();
    }
}

/// --map-location: "cpu", "cuda:0", or "cuda:1=cuda:0" pairs separated by commas.
Result<MapLocation> parseMapLocation(const QString &text)
{
    if (text.isEmpty())
        return MapLocation::automatic();
    if (!text.contains(u'='))
        return MapLocation::to(text);
    QHash<QString, QString> mapping;
    for (const QString &pair : text.split(u',', Qt::SkipEmptyParts)) {
        const QStringList sides = pair.split(u'=');
        if (sides.size() != 2 || sides[0].isEmpty() || sides[1].isEmpty())
            return Error{QStringLiteral("--map-location: “%1” is not FROM=TO (e.g. cuda:1=cuda:0)")
                             .arg(pair)};
        mapping.insert(sides[0].trimmed(), sides[1].trimmed());
    }
    return MapLocation::map(mapping);
}

QString formatKey(CheckpointFormat format)
{
    return formatName(format).toLower();
}

/// --max-inflated: how much the compressed records of a file may inflate to.
QCommandLineOption maxInflatedOption()
{
    return QCommandLineOption(
        QStringLiteral("max-inflated"),
        QStringLiteral("The most that a file's compressed records may inflate to, in all (e.g. "
                       "512M, 8G; default: a quarter of the memory). torch writes records "
                       "uncompressed: only re-zipped files or zip bombs need it."),
        QStringLiteral("SIZE"));
}

/// A size such as 4096, 512K, 512M, 8G or 1.5GiB (powers of 1024).
std::optional<qint64> parseByteSize(QString text)
{
    text = text.trimmed().toUpper();
    if (text.endsWith(u"IB"))
        text.chop(2);
    else if (text.endsWith(u'B'))
        text.chop(1);
    double scale = 1;
    if (!text.isEmpty()) {
        const qsizetype unit = QStringLiteral("KMGT").indexOf(text.back());
        if (unit >= 0) {
            scale = std::pow(1024.0, double(unit + 1));
            text.chop(1);
        }
    }
    bool ok = false;
    const double number = text.toDouble(&ok);
    const double bytes = number * scale;
    if (!ok || !(bytes >= 1) || bytes > 9.0e18)
        return std::nullopt;
    return qint64(bytes);
}

/// Reads --max-inflated into `options`; -1 to go on, else the exit code.
int readMaxInflated(const QCommandLineParser &parser, ReadOptions *options)
{
    const QString option = QStringLiteral("max-inflated");
    if (!parser.isSet(option))
        return -1;
    const std::optional<qint64> bytes = parseByteSize(parser.value(option));
    if (!bytes) {
        printError(QStringLiteral("--max-inflated “%1” is not a size such as 512M or 8G")
                       .arg(parser.value(option)));
        return kExitUsage;
    }
    options->maxInflatedBytes = *bytes;
    return -1;
}

/// Parses args; prints the error or the help. Returns -1 to go on, else the exit code.
int parseOrExit(QCommandLineParser &parser, const QStringList &args, const QString &command,
                int positionals)
{
    if (const int code = parseCommandLine(parser, args); code >= 0)
        return code;
    if (parser.positionalArguments().size() != positionals) {
        printError(QStringLiteral("%1 needs %2 file%3. Try `ifstudio-cli %1 --help`.")
                       .arg(command)
                       .arg(positionals)
                       .arg(positionals == 1 ? QString() : QStringLiteral("s")));
        return kExitUsage;
    }
    return -1;
}

// --- inspect -------------------------------------------------------------------------------------

/// What `inspect` found in a file.
struct Inspection
{
    struct Row
    {
        Path path;
        Tensor tensor;
        QString saved; ///< the saved location; tensor.device() is where it was mapped
    };
    QString path;
    CheckpointFile file;
    QList<Row> tensors;
    QList<std::pair<Path, Value>> values;
    QStringList notes;
    TensorTotals totals;
    QList<TensorStats> stats; ///< with --stats: one per row of `tensors`
};

/// --stats: the statistics of every tensor, each streamed from the file in bounded memory. A
/// file whose data cannot be read (changed since it was opened, damaged) is an error, not a
/// report with gaps.
Status computeStats(Inspection &inspection)
{
    inspection.stats.reserve(inspection.tensors.size());
    for (const Inspection::Row &row : std::as_const(inspection.tensors)) {
        TensorStats stats = computeTensorStats(row.tensor);
        if (stats.unreadable)
            return Error{stats.error};
        inspection.stats.append(std::move(stats));
    }
    return success();
}

/// Reads `path` keeping the saved locations (they are what the report shows), lists its tensors
/// and values, then maps the storages as asked. Tensor data stays in the file until --stats asks
/// for it (and is then streamed): inspecting costs no tensor memory, however the file inflates.
Result<Inspection> inspectFile(const QString &path, const MapLocation &location,
                               ReadOptions options)
{
    options.map = MapLocation::keep();
    options.tensorData = ReadOptions::TensorData::OnDemand;
    Result<CheckpointFile> file = readCheckpoint(path, options);
    if (!file)
        return file.error();
    Inspection inspection;
    inspection.path = path;
    inspection.file = std::move(file).value();
    Walker walker;
    walker.onTensor = [&](const Path &p, const Tensor &t) {
        inspection.tensors.append({p, t, t.device()});
    };
    walker.onValue = [&](const Path &p, const Value &v) {
        inspection.values.append({p, v});
    };
    walker.walk(inspection.file.root);
    inspection.notes = inspection.file.notes;
    inspection.notes += applyMapLocation(inspection.file.root, location);
    inspection.totals = tensorTotals(inspection.file.root);
    return inspection;
}

void writeStatsJson(JsonWriter &out, const TensorStats &s)
{
    out.key("stats");
    if (!s.error.isEmpty()) {
        out.null();
        return;
    }
    out.beginObject();
    out.key("min").value(s.min);
    out.key("max").value(s.max);
    out.key("mean").value(s.mean);
    out.key("std").value(s.std);
    out.key("nan").value(int64_t(s.nans));
    out.key("inf").value(int64_t(s.infs));
    out.key("zeros").value(int64_t(s.zeros));
    out.endObject();
}

void writeTensorJson(JsonWriter &out, const Inspection::Row &row, const TensorStats *stats)
{
    out.beginObject();
    out.key("path");
    writePath(out, row.path);
    out.key("dtype").value(dtypeName(row.tensor.dtype()));
    out.key("shape").beginArray();
    for (qint64 d : row.tensor.shape)
        out.value(int64_t(d));
    out.endArray();
    out.key("device").value(row.saved);
    if (row.tensor.device() != row.saved)
        out.key("location").value(row.tensor.device());
    // One tensor's own bytes, numel × element size, as torch reports them.
    out.key("bytes").value(int64_t(row.tensor.byteSize()));
    if (row.tensor.parameter)
        out.key("parameter").value(true);
    if (stats)
        writeStatsJson(out, *stats);
    out.endObject();
}

void writeValueJson(JsonWriter &out, const Path &path, const Value &value)
{
    out.beginObject();
    out.key("path");
    writePath(out, path);
    out.key("type").value(jsonTypeName(value));
    if (value.isObject()) {
        out.key("class").value(value.objectModule() + u'.' + value.objectName());
    } else {
        out.key("value");
        writeValue(out, value);
    }
    out.endObject();
}

void writeStringsJson(JsonWriter &out, const char *key, const QStringList &strings)
{
    out.key(key).beginArray();
    for (const QString &s : strings)
        out.value(s);
    out.endArray();
}

void printInspectionJson(const Inspection &inspection)
{
    JsonWriter out;
    out.beginObject();
    out.key("file").value(inspection.path);
    out.key("format").value(formatKey(inspection.file.format));
    out.key("tensors").beginArray();
    for (qsizetype i = 0; i < inspection.tensors.size(); ++i) {
        writeTensorJson(out, inspection.tensors[i],
                        inspection.stats.isEmpty() ? nullptr : &inspection.stats[i]);
    }
    out.endArray();
    out.key("values").beginArray();
    for (const auto &[p, v] : inspection.values)
        writeValueJson(out, p, v);
    out.endArray();
    writeStringsJson(out, "saved_locations", inspection.file.savedLocations());
    out.key("parameters").value(int64_t(inspection.totals.elements));
    out.key("tensor_bytes").value(int64_t(inspection.totals.bytes));
    out.key("view_bytes").value(int64_t(inspection.totals.viewBytes));
    writeStringsJson(out, "warnings", inspection.file.warnings);
    writeStringsJson(out, "notes", inspection.notes);
    out.endObject();
    QByteArray text = out.take();
    text.append('\n');
    writeOut(text);
}

QString statsText(const TensorStats &s)
{
    if (!s.error.isEmpty())
        return QString();
    return QStringLiteral("  min %1 max %2 mean %3 std %4%5")
        .arg(s.min, 0, 'g', 4)
        .arg(s.max, 0, 'g', 4)
        .arg(s.mean, 0, 'g', 4)
        .arg(s.std, 0, 'g', 4)
        .arg(s.nans || s.infs ? QStringLiteral("  NaN %1 Inf %2").arg(s.nans).arg(s.infs)
                              : QString());
}

void printInspectionText(const Inspection &inspection)
{
    const QLocale locale;
    const CheckpointFile &file = inspection.file;
    printOut(QStringLiteral("%1: %2 format, %3 tensors, %4 elements, %5; saved on %6")
                 .arg(QFileInfo(inspection.path).fileName(), formatName(file.format))
                 .arg(locale.toString(inspection.totals.tensors))
                 .arg(locale.toString(inspection.totals.elements))
                 .arg(humanBytes(inspection.totals.bytes))
                 .arg(file.savedLocations().isEmpty() ? QStringLiteral("-")
                                                      : file.savedLocations().join(u", ")));
    int width = 20;
    for (const Inspection::Row &row : inspection.tensors)
        width = std::max(width, int(pathText(row.path).size()));
    width = std::min(width, 60);
    for (qsizetype i = 0; i < inspection.tensors.size(); ++i) {
        const Inspection::Row &row = inspection.tensors[i];
        QString line = QStringLiteral("  %1 %2 %3 %4 %5")
                           .arg(pathText(row.path), -width)
                           .arg(dtypeName(row.tensor.dtype()), -9)
                           .arg(shapeText(row.tensor.shape), -18)
                           .arg(row.saved, -7)
                           .arg(humanBytes(row.tensor.byteSize()));
        if (!inspection.stats.isEmpty())
            line += statsText(inspection.stats[i]);
        printOut(line.trimmed().prepend(QStringLiteral("  ")));
    }
    for (const auto &[p, v] : inspection.values)
        printOut(QStringLiteral("  %1 = %2").arg(pathText(p), valueText(v)));
    for (const QString &w : file.warnings)
        printErr(QStringLiteral("warning: ") + w);
    for (const QString &n : inspection.notes)
        printErr(QStringLiteral("note: ") + n);
}

// --- repair --------------------------------------------------------------------------------------

/// repair's command-line options.
struct RepairCommandLine
{
    QCommandLineOption out{{QStringLiteral("o"), QStringLiteral("output")},
                           QStringLiteral("The file to write."),
                           QStringLiteral("OUT")};
    QCommandLineOption strip{QStringLiteral("strip-prefix"),
                             QStringLiteral("Remove a key prefix (module., model., "
                                            "_orig_mod.); repeatable."),
                             QStringLiteral("P")};
    QCommandLineOption add{QStringLiteral("add-prefix"), QStringLiteral("Add a key prefix."),
                           QStringLiteral("P")};
    QCommandLineOption rename{QStringLiteral("rename"),
                              QStringLiteral("Rename keys by a regular expression "
                                             "(Python's re.sub syntax); repeatable."),
                              QStringLiteral("REGEX=REPL")};
    QCommandLineOption extract{QStringLiteral("extract"),
                               QStringLiteral("Keep only the dict at KEY/KEY/... (e.g. "
                                              "state_dict)."),
                               QStringLiteral("KEYS")};
    QCommandLineOption drop{QStringLiteral("drop"),
                            QStringLiteral("Drop keys matching a glob (fc.*); repeatable."),
                            QStringLiteral("GLOB")};
    QCommandLineOption cast{QStringLiteral("cast"),
                            QStringLiteral("Cast floating tensors to float16, bfloat16, "
                                           "float32 or float64."),
                            QStringLiteral("DTYPE")};
    QCommandLineOption map{QStringLiteral("map-location"),
                           QStringLiteral("Where storages are read to: cpu, cuda:N or "
                                          "FROM=TO,..."),
                           QStringLiteral("DEV")};
    QCommandLineOption saveDevice{QStringLiteral("save-device"),
                                  QStringLiteral("Tag every storage for this device in the "
                                                 "written file (cuda:0 prepares it for a "
                                                 "GPU machine)."),
                                  QStringLiteral("DEV")};
    QCommandLineOption against{QStringLiteral("against"),
                               QStringLiteral("A checkpoint whose state dict's keys and "
                                              "shapes are the target."),
                               QStringLiteral("FILE")};
    QCommandLineOption autoFix{QStringLiteral("auto"),
                               QStringLiteral("With --against: apply the proposed renames.")};
    QCommandLineOption verify{QStringLiteral("verify"),
                              QStringLiteral("Read the written file back and compare every "
                                             "value and tensor bit for bit.")};
    QCommandLineOption overwrite{QStringLiteral("overwrite"),
                                 QStringLiteral("Replace OUT when it exists (when OUT is IN, a "
                                                "backup IN.bak is kept).")};
    QCommandLineOption maxInflated = maxInflatedOption();

    void addTo(QCommandLineParser &parser) const
    {
        parser.setApplicationDescription(QStringLiteral(
            "Writes a repaired copy of a checkpoint. Operations apply in this order: --extract, "
            "--strip-prefix, --add-prefix, --rename, --drop, --cast, --save-device; they act on "
            "the state dict inside the checkpoint (found automatically) and keep the rest "
            "(epoch, optimizer). OUT ending in .safetensors gets the state dict in that "
            "format.\n"
            "With --against, prints how load_state_dict would go against that checkpoint's "
            "keys; --auto applies the renames that make the most keys match."));
        parser.addOption(helpOption());
        for (const QCommandLineOption &o :
             {out, strip, add, rename, extract, drop, cast, map, saveDevice, against, autoFix,
              verify, overwrite, maxInflated})
            parser.addOption(o);
        parser.addPositionalArgument(QStringLiteral("IN"),
                                     QStringLiteral("The checkpoint to repair."));
    }
};

/// What `repair` was asked to do.
struct RepairRequest
{
    QString in;
    QString target; ///< empty with --against alone: only the report
    QString against;
    QString saveDevice;
    bool report = false; ///< --against was given
    bool extract = false;
    bool autoFix = false;
    bool verify = false;
    bool overwrite = false;
    ReadOptions read; ///< --max-inflated, for IN and --against
    MapLocation location;
    QList<Operation> operations; ///< in the documented order
};

/// The operations the options ask for; -1 to go on, else the exit code.
int repairOperations(const QCommandLineParser &parser, const RepairCommandLine &cl,
                     QList<Operation> *ops)
{
    if (parser.isSet(cl.extract))
        ops->append(ExtractDict{parser.value(cl.extract).split(u'/', Qt::SkipEmptyParts)});
    for (const QString &p : parser.values(cl.strip))
        ops->append(StripPrefix{p});
    if (parser.isSet(cl.add))
        ops->append(AddPrefix{parser.value(cl.add)});
    for (const QString &r : parser.values(cl.rename)) {
        const qsizetype eq = r.lastIndexOf(u'=');
        if (eq <= 0) {
            printError(QStringLiteral("--rename “%1” is not REGEX=REPL").arg(r));
            return kExitUsage;
        }
        ops->append(RenameRegex{r.left(eq), r.mid(eq + 1)});
    }
    if (parser.isSet(cl.drop))
        ops->append(DropKeys{parser.values(cl.drop)});
    if (parser.isSet(cl.cast)) {
        const std::optional<DType> to = dtypeFromName(parser.value(cl.cast));
        if (!to || !isFloatingPoint(*to) || *to == DType::Complex64 || *to == DType::Complex128) {
            printError(QStringLiteral("--cast “%1”: use float16, bfloat16, float32 or float64")
                           .arg(parser.value(cl.cast)));
            return kExitUsage;
        }
        ops->append(CastFloat{*to, {}});
    }
    return -1;
}

/// Parses repair's command line into `request`; -1 to go on, else the exit code.
int parseRepairRequest(const QStringList &args, RepairRequest *request)
{
    QCommandLineParser parser;
    const RepairCommandLine cl;
    cl.addTo(parser);
    if (const int code = parseOrExit(parser, args, QStringLiteral("repair"), 1); code >= 0)
        return code;
    request->in = parser.positionalArguments().constFirst();
    request->target = parser.value(cl.out);
    request->against = parser.value(cl.against);
    request->saveDevice = parser.value(cl.saveDevice);
    request->report = parser.isSet(cl.against);
    request->extract = parser.isSet(cl.extract);
    request->autoFix = parser.isSet(cl.autoFix);
    request->verify = parser.isSet(cl.verify);
    request->overwrite = parser.isSet(cl.overwrite);
    if (request->target.isEmpty() && !request->report) {
        printError(QStringLiteral("repair needs -o OUT (or --against FILE to only see the "
                                  "report)"));
        return kExitUsage;
    }
    if (const int code = repairOperations(parser, cl, &request->operations); code >= 0)
        return code;
    if (const int code = readMaxInflated(parser, &request->read); code >= 0)
        return code;
    const Result<MapLocation> location = parseMapLocation(parser.value(cl.map));
    if (!location) {
        printError(location.errorMessage());
        return kExitUsage;
    }
    request->location = location.value();
    return -1;
}

/// Reads the input and applies the operations, on the state dict inside unless --extract chose
/// the dict; -1 to go on with `result`, else the exit code.
int applyRepair(const RepairRequest &request, Value *result)
{
    ReadOptions options = request.read;
    options.map = request.location;
    Result<CheckpointFile> file = readCheckpoint(request.in, options);
    if (!file) {
        printError(file.errorMessage());
        return kExitFailure;
    }
    for (const QString &n : file->notes)
        printErr(QStringLiteral("note: ") + n);
    KeyPath at;
    if (!request.extract) {
        const QList<StateDictCandidate> candidates = findStateDicts(file->root);
        if (!candidates.isEmpty())
            at = candidates.first().path;
    }
    Result<RepairResult> repaired = applyOperations(file->root, request.operations, at);
    if (!repaired) {
        printError(repaired.errorMessage());
        return kExitFailure;
    }
    for (const OperationReport &step : repaired->steps)
        printErr(step.summary);
    *result = repaired->value;
    return -1;
}

/// The groups of a load report, a dozen of each kind at most: the summary has the counts.
void printKeyGroups(const QList<KeyGroup> &groups, const QString &kind)
{
    constexpr int kShown = 12;
    for (qsizetype i = 0; i < groups.size() && i < kShown; ++i)
        printOut(QStringLiteral("  ") + groups[i].text(kind));
    if (groups.size() > kShown)
        printOut(QStringLiteral("  … and %1 more groups %2").arg(groups.size() - kShown).arg(kind));
}

void printProposal(const QString &against, const RepairProposal &proposal)
{
    printOut(QStringLiteral("Against %1: %2")
                 .arg(QFileInfo(against).fileName(), proposal.before.summary));
    printKeyGroups(proposal.before.missingGroups, QStringLiteral("missing"));
    printKeyGroups(proposal.before.unexpectedGroups, QStringLiteral("unexpected"));
    printKeyGroups(proposal.before.mismatchedGroups, QStringLiteral("of another shape"));
    if (!proposal.operations.isEmpty() || !proposal.suggestions.isEmpty()) {
        printOut(QStringLiteral("Proposal: ") + proposal.summary);
        for (const Operation &op : proposal.operations)
            printOut(QStringLiteral("  ") + describe(op));
        for (const RepairSuggestion &s : proposal.suggestions)
            printOut(QStringLiteral("  (suggested, not applied) %1: %2")
                         .arg(describe(s.operation), s.reason));
    }
}

/// --against: how load_state_dict would go against that file's keys, and with --auto the
/// proposed renames applied to `result`. -1 to go on, else the exit code (the report alone, with
/// no OUT, ends here).
int reportAgainst(const RepairRequest &request, Value *result)
{
    Result<CheckpointFile> reference = readCheckpoint(request.against, request.read);
    if (!reference) {
        printError(reference.errorMessage());
        return kExitFailure;
    }
    const Result<StateDict> targetDict = extractStateDict(reference->root);
    if (!targetDict) {
        printError(QStringLiteral("--against: ") + targetDict.errorMessage());
        return kExitFailure;
    }
    const TargetSpec spec = targetFromStateDict(targetDict->tensors);
    const Result<RepairProposal> proposal = proposeRepair(*result, spec);
    if (!proposal) {
        printError(proposal.errorMessage());
        return kExitFailure;
    }
    printProposal(request.against, proposal.value());
    if (request.autoFix && !proposal->operations.isEmpty()) {
        Result<RepairResult> fixed = applyOperations(*result, proposal->operations, proposal->path);
        if (!fixed) {
            printError(fixed.errorMessage());
            return kExitFailure;
        }
        *result = fixed->value;
        printOut(QStringLiteral("Applied: ") + proposal->after.summary);
    }
    if (request.target.isEmpty())
        return proposal->before.loadsStrictly() ? kExitOk : kExitFailure;
    return -1;
}

/// Never replaces an existing OUT unless asked (OUT being IN is protectInput()'s case, which
/// also keeps a backup). Checked before anything is read. -1 to go on, else the exit code.
int protectExistingOutput(const RepairRequest &request)
{
    const QFileInfo target(request.target);
    if (request.overwrite || request.target.isEmpty() || (!target.exists() && !target.isSymLink()))
        return -1;
    if (target.canonicalFilePath() == QFileInfo(request.in).canonicalFilePath())
        return -1;
    printError(QStringLiteral("-o “%1” already exists: choose another name, or pass --overwrite "
                              "to replace it")
                   .arg(request.target));
    return kExitUsage;
}

/// Never writes over the input unless asked, and then keeps a backup. -1 to go on, else the exit
/// code.
int protectInput(const RepairRequest &request)
{
    const QString &target = request.target;
    if (!QFileInfo(target).exists()
        || QFileInfo(target).canonicalFilePath() != QFileInfo(request.in).canonicalFilePath()) {
        return -1;
    }
    if (!request.overwrite) {
        printError(QStringLiteral("-o “%1” is the input file: choose another name, or pass "
                                  "--overwrite to replace it (a backup %1.bak is kept)")
                       .arg(target));
        return kExitUsage;
    }
    const QString backup = target + QStringLiteral(".bak");
    QFile::remove(backup);
    if (!QFile::copy(request.in, backup)) {
        printError(QStringLiteral("cannot write the backup “%1”: nothing was changed").arg(backup));
        return kExitFailure;
    }
    printErr(QStringLiteral("note: the original is kept as ") + backup);
    return -1;
}

/// Writes `result`: its state dict to a .safetensors OUT, the whole of it otherwise.
int writeRepaired(const RepairRequest &request, const Value &result)
{
    Status written = success();
    if (isSafetensorsPath(request.target)) {
        const Result<StateDict> weights = extractStateDict(result);
        if (!weights) {
            printError(weights.errorMessage());
            return kExitFailure;
        }
        QStringList notes;
        written = writeSafetensors(request.target, weights->tensors, {}, &notes);
        for (const QString &n : notes)
            printErr(QStringLiteral("note: ") + n);
    } else {
        WriteOptions writeOptions;
        writeOptions.device = request.saveDevice;
        written = writeCheckpoint(request.target, result, writeOptions);
    }
    if (!written) {
        printError(written.errorMessage());
        return kExitFailure;
    }
    return -1;
}

/// --verify: reads OUT back and compares it with what was meant to be written.
int verifyRepaired(const RepairRequest &request, const Value &result)
{
    const QString &target = request.target;
    // What was meant to be written, as the file should hold it.
    Value expected = result;
    if (isSafetensorsPath(target))
        expected = extractStateDict(result).value().tensors; // checked before writing
    ReadOptions keep;
    keep.map = MapLocation::keep();
    const Result<CheckpointFile> back = readCheckpoint(target, keep);
    if (!back) {
        printError(QStringLiteral("verify: ") + back.errorMessage());
        return kExitFailure;
    }
    if (!request.saveDevice.isEmpty())
        applyMapLocation(back->root, MapLocation::to(QStringLiteral("cpu")));
    const Result<StateDict> wanted = extractStateDict(expected);
    const Result<StateDict> got = extractStateDict(back->root);
    if (wanted && got) {
        const Result<StateDictDiff> diff = diffStateDicts(wanted->tensors, got->tensors);
        if (!diff || !diff->identical()) {
            printError(QStringLiteral("verify: “%1” does not read back as written: %2")
                           .arg(target, diff ? diff->summary : diff.errorMessage()));
            return kExitFailure;
        }
        printErr(QStringLiteral("verified: ") + diff->summary);
    } else if (!(expected == back->root)) {
        printError(QStringLiteral("verify: “%1” does not read back as written").arg(target));
        return kExitFailure;
    } else {
        printErr(QStringLiteral("verified: the file reads back as written"));
    }
    return -1;
}

} // namespace

int runInspect(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Shows what a checkpoint holds (torch.save zip or legacy, TorchScript, safetensors), "
        "without Python and without running any code from the file."));
    const QCommandLineOption json(QStringLiteral("json"), QStringLiteral("Print one JSON object."));
    const QCommandLineOption stats(QStringLiteral("stats"),
                                   QStringLiteral("Add min/max/mean/std and NaN/Inf counts."));
    const QCommandLineOption map(QStringLiteral("map-location"),
                                 QStringLiteral("Where storages go: cpu, cuda:N, or "
                                                "FROM=TO,... (default: the CPU for devices "
                                                "missing here)."),
                                 QStringLiteral("DEV"));
    parser.addOption(helpOption());
    parser.addOption(json);
    parser.addOption(stats);
    parser.addOption(map);
    parser.addOption(maxInflatedOption());
    parser.addPositionalArgument(QStringLiteral("FILE"), QStringLiteral("The checkpoint."));
    if (const int code = parseOrExit(parser, args, QStringLiteral("inspect"), 1); code >= 0)
        return code;

    const Result<MapLocation> location = parseMapLocation(parser.value(map));
    if (!location) {
        printError(location.errorMessage());
        return kExitUsage;
    }
    ReadOptions options;
    if (const int code = readMaxInflated(parser, &options); code >= 0)
        return code;
    Result<Inspection> inspection
        = inspectFile(parser.positionalArguments().constFirst(), location.value(), options);
    if (!inspection) {
        printError(inspection.errorMessage());
        return kExitFailure;
    }
    if (parser.isSet(stats)) {
        if (const Status computed = computeStats(inspection.value()); !computed) {
            printError(computed.errorMessage());
            return kExitFailure;
        }
    }
    if (parser.isSet(json))
        printInspectionJson(inspection.value());
    else
        printInspectionText(inspection.value());
    return kExitOk;
}

int runRepair(const QStringList &args)
{
    RepairRequest request;
    if (const int code = parseRepairRequest(args, &request); code >= 0)
        return code;
    if (const int code = protectExistingOutput(request); code >= 0)
        return code;
    Value result;
    if (const int code = applyRepair(request, &result); code >= 0)
        return code;
    if (request.report) {
        if (const int code = reportAgainst(request, &result); code >= 0)
            return code;
    }
    if (const int code = protectInput(request); code >= 0)
        return code;
    if (const int code = writeRepaired(request, result); code >= 0)
        return code;
    if (request.verify) {
        if (const int code = verifyRepaired(request, result); code >= 0)
            return code;
    }
    printErr(QStringLiteral("wrote ") + request.target);
    return kExitOk;
}

int runDiff(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Compares the state dicts of two checkpoints: keys on one side only, shapes and dtypes "
        "that differ, and the largest difference of the values. Exits 0 when identical, 1 "
        "otherwise."));
    const QCommandLineOption json(QStringLiteral("json"), QStringLiteral("Print one JSON object."));
    parser.addOption(helpOption());
    parser.addOption(json);
    parser.addOption(maxInflatedOption());
    parser.addPositionalArgument(QStringLiteral("A"), QStringLiteral("A checkpoint."));
    parser.addPositionalArgument(QStringLiteral("B"), QStringLiteral("Another checkpoint."));
    if (const int code = parseOrExit(parser, args, QStringLiteral("diff"), 2); code >= 0)
        return code;
    ReadOptions options;
    if (const int code = readMaxInflated(parser, &options); code >= 0)
        return code;
    Value dicts[2];
    for (int i = 0; i < 2; ++i) {
        const QString path = parser.positionalArguments()[i];
        const Result<CheckpointFile> file = readCheckpoint(path, options);
        if (!file) {
            printError(file.errorMessage());
            return kExitFailure;
        }
        const Result<StateDict> weights = extractStateDict(file->root);
        if (!weights) {
            printError(QStringLiteral("“%1”: %2").arg(path, weights.errorMessage()));
            return kExitFailure;
        }
        dicts[i] = weights->tensors;
    }
    const Result<StateDictDiff> diff = diffStateDicts(dicts[0], dicts[1]);
    if (!diff) {
        printError(diff.errorMessage());
        return kExitFailure;
    }
    if (parser.isSet(json)) {
        JsonWriter out;
        out.beginObject();
        out.key("identical").value(diff->identical());
        auto list = [&out](const char *name, const QStringList &keys) {
            out.key(name).beginArray();
            for (const QString &k : keys)
                out.value(k);
            out.endArray();
        };
        list("only_in_a", diff->onlyInA);
        list("only_in_b", diff->onlyInB);
        out.key("shape_differs").beginArray();
        for (const TensorDifference &d : diff->shapeDiffers) {
            out.beginObject();
            out.key("key").value(d.key);
            out.key("shape_a").beginArray();
            for (qint64 x : d.shapeA)
                out.value(int64_t(x));
            out.endArray();
            out.key("shape_b").beginArray();
            for (qint64 x : d.shapeB)
                out.value(int64_t(x));
            out.endArray();
            out.endObject();
        }
        out.endArray();
        list("dtype_differs", diff->dtypeDiffers);
        list("other_differs", diff->otherDiffers);
        out.key("compared").beginArray();
        for (const TensorDifference &d : diff->compared) {
            out.beginObject();
            out.key("key").value(d.key);
            out.key("identical").value(d.identical);
            out.key("max_abs_diff").value(d.maxAbsDiff);
            out.endObject();
        }
        out.endArray();
        out.key("identical_tensors").value(diff->identicalCount);
        out.key("max_abs_diff").value(diff->maxAbsDiff);
        out.key("summary").value(diff->summary);
        out.endObject();
        QByteArray text = out.take();
        text.append('\n');
        writeOut(text);
    } else {
        printOut(diff->summary);
        for (const QString &k : diff->onlyInA)
            printOut(QStringLiteral("  only in A: ") + k);
        for (const QString &k : diff->onlyInB)
            printOut(QStringLiteral("  only in B: ") + k);
        for (const TensorDifference &d : diff->shapeDiffers)
            printOut(QStringLiteral("  %1: %2 vs %3")
                         .arg(d.key, shapeText(d.shapeA), shapeText(d.shapeB)));
        for (const TensorDifference &d : diff->compared)
            if (!d.identical)
                printOut(QStringLiteral("  %1: max |a − b| = %2")
                             .arg(d.key)
                             .arg(d.maxAbsDiff, 0, 'g', 6));
    }
    return diff->identical() ? kExitOk : kExitFailure;
}

} // namespace ifs::cli
