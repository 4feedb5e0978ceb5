#include "commands.h"

#include "base/filenames.h"
#include "base/jsonwriter.h"
#include "dataset/datasetlayout.h"
#include "dataset/imagefolder.h"

#include <QCommandLineParser>
#include <QLocale>

#include <charconv>
#include <vector>

namespace ifs::cli {

namespace {

/// Writes the samples array (json.dumps(samples, separators=(",", ":"))) straight into one
/// reused buffer, flushed to stdout when full: the hot loop of `scan --json` (a million samples)
/// makes no call per value and needs no buffer of the output's size.
void writeSamplesJson(const std::vector<Sample> &samples)
{
    // Small enough that its pages are few (each is a page fault), large enough that the writes
    // are few: a pipe takes 64 KB at a time anyway.
    constexpr size_t kChunk = 128 * 1024;
    constexpr size_t kIndexRoom = 16; // ',' '[' ',' digits ']'
    std::vector<char> buffer(kChunk);
    size_t used = 0;
    auto flush = [&] {
        writeOut(QByteArray::fromRawData(buffer.data(), qsizetype(used)));
        used = 0;
    };
    buffer[used++] = '[';
    bool first = true;
    for (const Sample &sample : samples) {
        const std::string_view path = sample.relativePath();
        const size_t room = maxJsonFileNameSize(path.size()) + kIndexRoom;
        if (used + room > buffer.size()) {
            flush();
            if (room > buffer.size())
                buffer.resize(room);
        }
        char *out = buffer.data() + used;
        if (!first)
            *out++ = ',';
        first = false;
        *out++ = '[';
        out = writeJsonFileName(out, path);
        *out++ = ',';
        out = std::to_chars(out, buffer.data() + buffer.size(), sample.classIndex).ptr;
        *out++ = ']';
        used = size_t(out - buffer.data());
    }
    buffer[used++] = ']';
    flush();
}

/// Streams the JSON object to stdout in pieces: a million samples need no buffer of their own.
void writeScanJson(const ImageFolderIndex &index, const QList<DatasetWarning> &warnings)
{
    // File names are bytes: an undecodable byte is written as json.dumps() writes torchvision's
    // surrogate-escaped str ("\udcff"), so that json.loads() of our output equals its samples.
    JsonWriter json;
    json.beginObject();
    json.key("root").value(index.root);
    json.key("classes").beginArray();
    for (const QString &name : index.classes)
        json.value(name);
    json.endArray();
    json.key("class_to_idx").beginObject();
    for (int i = 0; i < index.classes.size(); ++i) {
        const QByteArray name = encodeFileName(index.classes[i]);
        json.fileNameKey(std::string_view(name.constData(), size_t(name.size()))).value(i);
    }
    json.endObject();
    json.key("samples");
    json.drain([](const QByteArray &piece) { writeOut(piece); });
    writeSamplesJson(index.samples);

    // The rest of the object, after the samples the writer did not see.
    JsonWriter tail;
    tail.beginArray();
    for (const DatasetWarning &warning : warnings)
        tail.value(warning.message);
    tail.endArray();
    writeOut(QByteArrayLiteral(",\"warnings\":") + tail.data() + QByteArrayLiteral("}\n"));
}

void printSummary(const ImageFolderIndex &index, const QList<DatasetWarning> &warnings)
{
    const QLocale locale;
    printOut(QStringLiteral("%1: %2 classes, %3 images")
                 .arg(index.root)
                 .arg(index.classCount())
                 .arg(locale.toString(qlonglong(index.sampleCount()))));
    int nameWidth = 5;
    for (const QString &name : index.classes)
        nameWidth = qMax(nameWidth, int(name.size()));
    nameWidth = qMin(nameWidth, 40);
    printOut(QStringLiteral("  %1  %2  %3  %4")
                 .arg(QStringLiteral("index"), -5)
                 .arg(QStringLiteral("class"), -nameWidth)
                 .arg(QStringLiteral("images"), 9)
                 .arg(QStringLiteral("share"), 6));
    const double total = qMax<double>(1, double(index.sampleCount()));
    for (int i = 0; i < index.classes.size(); ++i) {
        const int64_t count = index.counts[size_t(i)];
        printOut(QStringLiteral("  %1  %2  %3  %4%")
                     .arg(i, 5)
                     .arg(displayFileName(index.classes[i]), -nameWidth)
                     .arg(locale.toString(qlonglong(count)), 9)
                     .arg(100.0 * double(count) / total, 5, 'f', 1));
    }
    for (const DatasetWarning &warning : warnings) {
        if (warning.kind != DatasetWarning::Kind::Refused)
            printOut(QStringLiteral("warning: ") + warning.message);
    }
}

} // namespace

int runScan(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Lists what torchvision's datasets.ImageFolder(ROOT) would find: classes, "
                       "class_to_idx and samples, in torchvision's order."));
    parser.addOption(helpOption());
    parser.addPositionalArgument(QStringLiteral("ROOT"),
                                 QStringLiteral("The folder that holds one sub-folder per class."));
    const QCommandLineOption jsonOption(
        QStringLiteral("json"),
        QStringLiteral("Print one JSON object: root, classes, class_to_idx, samples, warnings."));
    const QCommandLineOption allowEmptyOption(
        QStringLiteral("allow-empty"),
        QStringLiteral("Accept classes without images (allow_empty=True in newer torchvision)."));
    parser.addOption(jsonOption);
    parser.addOption(allowEmptyOption);
    if (const int code = parseCommandLine(parser, args); code >= 0)
        return code;

    if (parser.positionalArguments().size() != 1) {
        printError(
            QStringLiteral("scan needs exactly one ROOT folder. Try `ifstudio-cli scan --help`."));
        return kExitUsage;
    }
    const QString root = parser.positionalArguments().constFirst();

    ScanOptions options;
    options.allowEmpty = parser.isSet(allowEmptyOption);
    Result<ImageFolderIndex> scanned = scanImageFolder(root, options);
    if (!scanned) {
        printError(scanned.errorMessage());
        return kExitFailure;
    }
    const ImageFolderIndex &index = scanned.value();
    if (!index.refusal.isEmpty()) {
        printError(index.refusal);
        const DatasetLayout layout = detectLayout(root);
        if (layout.hasSplits()) {
            printErr(QStringLiteral("hint: “%1” holds the splits %2: scan one of them, e.g. "
                                    "`ifstudio-cli scan %3`.")
                         .arg(layout.root, layout.splits.join(QStringLiteral(", ")),
                              layout.splitRoot(layout.splits.constFirst())));
        }
        return kExitFailure;
    }

    const QList<DatasetWarning> warnings = analyseDataset(index);
    if (parser.isSet(jsonOption)) {
        writeScanJson(index, warnings);
    } else {
        printSummary(index, warnings);
        const DatasetLayout layout = detectLayout(root);
        if (layout.hasSplits()) {
            printOut(QStringLiteral("note: this folder holds the splits %1; torchvision sees them "
                                    "as classes here. Scan each split on its own.")
                         .arg(layout.splits.join(QStringLiteral(", "))));
        }
    }
    return kExitOk;
}

} // namespace ifs::cli
