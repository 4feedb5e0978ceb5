#include "commands.h"

#include "base/filenames.h"
#include "base/jsonwriter.h"
#include "dataset/datasetlayout.h"
#include "dataset/imagefolder.h"

#include <QCommandLineParser>
#include <QLocale>

namespace ifs::cli {

namespace {

/// Streams the JSON object to stdout in pieces: a million samples need no buffer of their own.
void writeScanJson(const ImageFolderIndex &index, const QList<DatasetWarning> &warnings)
{
    // File names are bytes: an undecodable byte is written as json.dumps() writes torchvision's
    // surrogate-escaped str ("\udcff"), so that json.loads() of our output equals its samples.
    constexpr qsizetype kChunk = 1 << 20;
    JsonWriter json;
    json.reserve(kChunk + 4096);
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
    json.key("samples").beginArray();
    for (const Sample &sample : index.samples) {
        json.beginArray().fileName(sample.relativePath()).value(sample.classIndex).endArray();
        if (json.data().size() >= kChunk)
            json.drain([](const QByteArray &piece) { writeOut(piece); });
    }
    json.endArray();
    json.key("warnings").beginArray();
    for (const DatasetWarning &warning : warnings)
        json.value(warning.message);
    json.endArray();
    json.endObject();
    json.drain([](const QByteArray &piece) { writeOut(piece); });
    writeOut(QByteArrayLiteral("\n"));
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
