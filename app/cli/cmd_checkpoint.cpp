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
    parser.addPositionalArgument(QStringLiteral("FILE"), QStringLiteral("The checkpoint."));
    if (const int code = parseOrExit(parser, args, QStringLiteral("inspect"), 1); code >= 0)
        return code;

    const Result<MapLocation> location = parseMapLocation(parser.value(map));
    if (!location) {
        printError(location.errorMessage());
        return kExitUsage;
    }
    const QString path = parser.positionalArguments().constFirst();
    // Read keeping the saved locations (they are what the report shows), then map.
    ReadOptions options;
    options.map = MapLocation::keep();
    Result<CheckpointFile> file = readCheckpoint(path, options);
    if (!file) {
        printError(file.errorMessage());
        return kExitFailure;
    }
    struct Row
    {
        Path path;
        Tensor tensor;
        QString saved;
    };
    QList<Row> tensors;
    QList<std::pair<Path, Value>> values;
    Walker walker;
    walker.onTensor = [&](const Path &p, const Tensor &t) {
        tensors.append({p, t, t.device()});
    };
    walker.onValue = [&](const Path &p, const Value &v) {
        values.append({p, v});
    };
    walker.walk(file->root);
    QStringList notes = file->notes;
    notes += applyMapLocation(file->root, location.value());

    const TensorTotals totals = tensorTotals(file->root);

    if (parser.isSet(json)) {
        JsonWriter out;
        out.beginObject();
        out.key("file").value(path);
        out.key("format").value(formatKey(file->format));
        out.key("tensors").beginArray();
        for (const Row &row : tensors) {
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
            if (parser.isSet(stats)) {
                const TensorStats s = computeTensorStats(row.tensor);
                out.key("stats");
                if (!s.error.isEmpty()) {
                    out.null();
                } else {
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
            }
            out.endObject();
        }
        out.endArray();
        out.key("values").beginArray();
        for (const auto &[p, v] : values) {
            out.beginObject();
            out.key("path");
            writePath(out, p);
            out.key("type").value(jsonTypeName(v));
            if (v.isObject()) {
                out.key("class").value(v.objectModule() + u'.' + v.objectName());
            } else {
                out.key("value");
                writeValue(out, v);
            }
            out.endObject();
        }
        out.endArray();
        out.key("saved_locations").beginArray();
        for (const QString &l : file->savedLocations())
            out.value(l);
        out.endArray();
        out.key("parameters").value(int64_t(totals.elements));
        out.key("tensor_bytes").value(int64_t(totals.bytes));
        out.key("view_bytes").value(int64_t(totals.viewBytes));
        out.key("warnings").beginArray();
        for (const QString &w : file->warnings)
            out.value(w);
        out.endArray();
        out.key("notes").beginArray();
        for (const QString &n : notes)
            out.value(n);
        out.endArray();
        out.endObject();
        QByteArray text = out.take();
        text.append('\n');
        writeOut(text);
        return kExitOk;
    }

    const QLocale locale;
    printOut(QStringLiteral("%1: %2 format, %3 tensors, %4 elements, %5; saved on %6")
                 .arg(QFileInfo(path).fileName(), formatName(file->format))
                 .arg(locale.toString(totals.tensors))
                 .arg(locale.toString(totals.elements))
                 .arg(humanBytes(totals.bytes))
                 .arg(file->savedLocations().isEmpty() ? QStringLiteral("-")
                                                       : file->savedLocations().join(u", ")));
    int width = 20;
    for (const Row &row : tensors)
        width = std::max(width, int(pathText(row.path).size()));
    width = std::min(width, 60);
    for (const Row &row : tensors) {
        QString line = QStringLiteral("  %1 %2 %3 %4 %5")
                           .arg(pathText(row.path), -width)
                           .arg(dtypeName(row.tensor.dtype()), -9)
                           .arg(shapeText(row.tensor.shape), -18)
                           .arg(row.saved, -7)
                           .arg(humanBytes(row.tensor.byteSize()));
        if (parser.isSet(stats)) {
            const TensorStats s = computeTensorStats(row.tensor);
            if (s.error.isEmpty())
                line += QStringLiteral("  min %1 max %2 mean %3 std %4%5")
                            .arg(s.min, 0, 'g', 4)
                            .arg(s.max, 0, 'g', 4)
                            .arg(s.mean, 0, 'g', 4)
                            .arg(s.std, 0, 'g', 4)
                            .arg(s.nans || s.infs
                                     ? QStringLiteral("  NaN %1 Inf %2").arg(s.nans).arg(s.infs)
                                     : QString());
        }
        printOut(line.trimmed().prepend(QStringLiteral("  ")));
    }
    for (const auto &[p, v] : values)
        printOut(QStringLiteral("  %1 = %2").arg(pathText(p), valueText(v)));
    for (const QString &w : file->warnings)
        printErr(QStringLiteral("warning: ") + w);
    for (const QString &n : notes)
        printErr(QStringLiteral("note: ") + n);
    return kExitOk;
}

int runRepair(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Writes a repaired copy of a checkpoint. Operations apply in this order: --extract, "
        "--strip-prefix, --add-prefix, --rename, --drop, --cast, --save-device; they act on the "
        "state dict inside the checkpoint (found automatically) and keep the rest (epoch, "
        "optimizer). OUT ending in .safetensors gets the state dict in that format.\n"
        "With --against, prints how load_state_dict would go against that checkpoint's keys; "
        "--auto applies the renames that make the most keys match."));
    const QCommandLineOption out({QStringLiteral("o"), QStringLiteral("output")},
                                 QStringLiteral("The file to write."), QStringLiteral("OUT"));
    const QCommandLineOption strip(QStringLiteral("strip-prefix"),
                                   QStringLiteral("Remove a key prefix (module., model., "
                                                  "_orig_mod.); repeatable."),
                                   QStringLiteral("P"));
    const QCommandLineOption add(QStringLiteral("add-prefix"), QStringLiteral("Add a key prefix."),
                                 QStringLiteral("P"));
    const QCommandLineOption rename(QStringLiteral("rename"),
                                    QStringLiteral("Rename keys by a regular expression "
                                                   "(Python's re.sub syntax); repeatable."),
                                    QStringLiteral("REGEX=REPL"));
    const QCommandLineOption extract(QStringLiteral("extract"),
                                     QStringLiteral("Keep only the dict at KEY/KEY/... (e.g. "
                                                    "state_dict)."),
                                     QStringLiteral("KEYS"));
    const QCommandLineOption drop(QStringLiteral("drop"),
                                  QStringLiteral("Drop keys matching a glob (fc.*); repeatable."),
                                  QStringLiteral("GLOB"));
    const QCommandLineOption cast(QStringLiteral("cast"),
                                  QStringLiteral("Cast floating tensors to float16, bfloat16, "
                                                 "float32 or float64."),
                                  QStringLiteral("DTYPE"));
    const QCommandLineOption map(QStringLiteral("map-location"),
                                 QStringLiteral("Where storages are read to: cpu, cuda:N or "
                                                "FROM=TO,..."),
                                 QStringLiteral("DEV"));
    const QCommandLineOption saveDevice(QStringLiteral("save-device"),
                                        QStringLiteral("Tag every storage for this device in the "
                                                       "written file (cuda:0 prepares it for a "
                                                       "GPU machine)."),
                                        QStringLiteral("DEV"));
    const QCommandLineOption against(QStringLiteral("against"),
                                     QStringLiteral("A checkpoint whose state dict's keys and "
                                                    "shapes are the target."),
                                     QStringLiteral("FILE"));
    const QCommandLineOption autoFix(QStringLiteral("auto"),
                                     QStringLiteral("With --against: apply the proposed renames."));
    const QCommandLineOption verify(QStringLiteral("verify"),
                                    QStringLiteral("Read the written file back and compare every "
                                                   "value and tensor bit for bit."));
    const QCommandLineOption overwrite(QStringLiteral("overwrite"),
                                       QStringLiteral("Allow OUT to be IN (a backup IN.bak is "
                                                      "kept)."));
    parser.addOption(helpOption());
    for (const QCommandLineOption &o : {out, strip, add, rename, extract, drop, cast, map,
                                        saveDevice, against, autoFix, verify, overwrite})
        parser.addOption(o);
    parser.addPositionalArgument(QStringLiteral("IN"), QStringLiteral("The checkpoint to repair."));
    if (const int code = parseOrExit(parser, args, QStringLiteral("repair"), 1); code >= 0)
        return code;
    const QString in = parser.positionalArguments().constFirst();
    const QString target = parser.value(out);
    if (target.isEmpty() && !parser.isSet(against)) {
        printError(QStringLiteral("repair needs -o OUT (or --against FILE to only see the "
                                  "report)"));
        return kExitUsage;
    }

    QList<Operation> ops;
    if (parser.isSet(extract))
        ops.append(ExtractDict{parser.value(extract).split(u'/', Qt::SkipEmptyParts)});
    for (const QString &p : parser.values(strip))
        ops.append(StripPrefix{p});
    if (parser.isSet(add))
        ops.append(AddPrefix{parser.value(add)});
    for (const QString &r : parser.values(rename)) {
        const qsizetype eq = r.lastIndexOf(u'=');
        if (eq <= 0) {
            printError(QStringLiteral("--rename “%1” is not REGEX=REPL").arg(r));
            return kExitUsage;
        }
        ops.append(RenameRegex{r.left(eq), r.mid(eq + 1)});
    }
    if (parser.isSet(drop))
        ops.append(DropKeys{parser.values(drop)});
    if (parser.isSet(cast)) {
        const std::optional<DType> to = dtypeFromName(parser.value(cast));
        if (!to || !isFloatingPoint(*to) || *to == DType::Complex64 || *to == DType::Complex128) {
            printError(QStringLiteral("--cast “%1”: use float16, bfloat16, float32 or float64")
                           .arg(parser.value(cast)));
            return kExitUsage;
        }
        ops.append(CastFloat{*to, {}});
    }

    const Result<MapLocation> location = parseMapLocation(parser.value(map));
    if (!location) {
        printError(location.errorMessage());
        return kExitUsage;
    }
    ReadOptions options;
    options.map = location.value();
    Result<CheckpointFile> file = readCheckpoint(in, options);
    if (!file) {
        printError(file.errorMessage());
        return kExitFailure;
    }
    for (const QString &n : file->notes)
        printErr(QStringLiteral("note: ") + n);

    // Operations act on the state dict inside the checkpoint unless an extract chose it.
    KeyPath at;
    if (!parser.isSet(extract)) {
        const QList<StateDictCandidate> candidates = findStateDicts(file->root);
        if (!candidates.isEmpty())
            at = candidates.first().path;
    }
    Result<RepairResult> repaired = applyOperations(file->root, ops, at);
    if (!repaired) {
        printError(repaired.errorMessage());
        return kExitFailure;
    }
    for (const OperationReport &step : repaired->steps)
        printErr(step.summary);
    Value result = repaired->value;

    if (parser.isSet(against)) {
        Result<CheckpointFile> reference = readCheckpoint(parser.value(against));
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
        const Result<RepairProposal> proposal = proposeRepair(result, spec);
        if (!proposal) {
            printError(proposal.errorMessage());
            return kExitFailure;
        }
        printOut(QStringLiteral("Against %1: %2")
                     .arg(QFileInfo(parser.value(against)).fileName(), proposal->before.summary));
        // The groups, a dozen of each kind at most: the summary has the counts.
        auto printGroups = [](const QList<KeyGroup> &groups, const QString &kind) {
            constexpr int kShown = 12;
            for (qsizetype i = 0; i < groups.size() && i < kShown; ++i)
                printOut(QStringLiteral("  ") + groups[i].text(kind));
            if (groups.size() > kShown)
                printOut(QStringLiteral("  … and %1 more groups %2")
                             .arg(groups.size() - kShown)
                             .arg(kind));
        };
        printGroups(proposal->before.missingGroups, QStringLiteral("missing"));
        printGroups(proposal->before.unexpectedGroups, QStringLiteral("unexpected"));
        printGroups(proposal->before.mismatchedGroups, QStringLiteral("of another shape"));
        if (!proposal->operations.isEmpty() || !proposal->suggestions.isEmpty()) {
            printOut(QStringLiteral("Proposal: ") + proposal->summary);
            for (const Operation &op : proposal->operations)
                printOut(QStringLiteral("  ") + describe(op));
            for (const RepairSuggestion &s : proposal->suggestions)
                printOut(QStringLiteral("  (suggested, not applied) %1: %2")
                             .arg(describe(s.operation), s.reason));
        }
        if (parser.isSet(autoFix) && !proposal->operations.isEmpty()) {
            Result<RepairResult> fixed
                = applyOperations(result, proposal->operations, proposal->path);
            if (!fixed) {
                printError(fixed.errorMessage());
                return kExitFailure;
            }
            result = fixed->value;
            printOut(QStringLiteral("Applied: ") + proposal->after.summary);
        }
        if (target.isEmpty())
            return proposal->before.loadsStrictly() ? kExitOk : kExitFailure;
    }

    // Never write over the input unless asked, and then keep a backup.
    if (QFileInfo(target).exists()
        && QFileInfo(target).canonicalFilePath() == QFileInfo(in).canonicalFilePath()) {
        if (!parser.isSet(overwrite)) {
            printError(QStringLiteral("-o “%1” is the input file: choose another name, or pass "
                                      "--overwrite to replace it (a backup %1.bak is kept)")
                           .arg(target));
            return kExitUsage;
        }
        const QString backup = target + QStringLiteral(".bak");
        QFile::remove(backup);
        if (!QFile::copy(in, backup)) {
            printError(
                QStringLiteral("cannot write the backup “%1”: nothing was changed").arg(backup));
            return kExitFailure;
        }
        printErr(QStringLiteral("note: the original is kept as ") + backup);
    }
    Status written = success();
    if (isSafetensorsPath(target)) {
        const Result<StateDict> weights = extractStateDict(result);
        if (!weights) {
            printError(weights.errorMessage());
            return kExitFailure;
        }
        QStringList notes;
        written = writeSafetensors(target, weights->tensors, {}, &notes);
        for (const QString &n : notes)
            printErr(QStringLiteral("note: ") + n);
    } else {
        WriteOptions writeOptions;
        writeOptions.device = parser.value(saveDevice);
        written = writeCheckpoint(target, result, writeOptions);
    }
    if (!written) {
        printError(written.errorMessage());
        return kExitFailure;
    }
    if (parser.isSet(verify)) {
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
        if (!parser.value(saveDevice).isEmpty())
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
    }
    printErr(QStringLiteral("wrote ") + target);
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
    parser.addPositionalArgument(QStringLiteral("A"), QStringLiteral("A checkpoint."));
    parser.addPositionalArgument(QStringLiteral("B"), QStringLiteral("Another checkpoint."));
    if (const int code = parseOrExit(parser, args, QStringLiteral("diff"), 2); code >= 0)
        return code;
    Value dicts[2];
    for (int i = 0; i < 2; ++i) {
        const QString path = parser.positionalArguments()[i];
        const Result<CheckpointFile> file = readCheckpoint(path);
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
