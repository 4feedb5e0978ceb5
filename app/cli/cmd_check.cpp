#include "commands.h"

#include "base/jsonwriter.h"
#include "dataset/datasetlayout.h"
#include "dataset/healthcheck.h"
#include "dataset/imagefolder.h"

#include <QCommandLineParser>
#include <QFileInfo>
#include <QLocale>

#include <atomic>
#include <csignal>
#include <map>

namespace ifs::cli {

namespace {

std::atomic_bool g_interrupted{false};

extern "C" void onInterrupt(int)
{
    g_interrupted = true;
}

QByteArray reportJson(const QString &root, const QStringList &splits, const HealthReport &report)
{
    JsonWriter json;
    json.beginObject();
    json.key("root").value(root);
    json.key("splits").beginArray();
    for (const QString &split : splits)
        json.value(split);
    json.endArray();
    json.key("files_checked").value(report.filesChecked);
    json.key("bytes_read").value(report.bytesRead);
    json.key("seconds").value(report.seconds);
    json.key("cancelled").value(report.cancelled);
    json.key("errors").value(report.errorCount());
    json.key("warnings").value(report.warningCount());
    json.key("findings").beginArray();
    for (const HealthFinding &finding : report.findings) {
        json.beginObject();
        json.key("kind").value(healthKindKey(finding.kind));
        json.key("severity").value(healthSeverityKey(finding.severity));
        json.key("split");
        if (finding.split.isEmpty())
            json.null();
        else
            json.value(finding.split);
        json.key("path").value(finding.relativePath);
        json.key("message").value(finding.message);
        json.key("duplicate_of");
        if (finding.duplicateOf.isEmpty())
            json.null();
        else
            json.value(finding.duplicateOf);
        json.endObject();
    }
    json.endArray();
    json.endObject();
    QByteArray out = json.take();
    out.append('\n');
    return out;
}

void printReport(const QString &root, const QStringList &splits, const HealthReport &report)
{
    const QLocale locale;
    printOut(
        QStringLiteral("%1%2: %3 files checked in %4 s")
            .arg(root,
                 splits.isEmpty() ? QString() : QStringLiteral(" (%1)").arg(splits.join(u", ")))
            .arg(locale.toString(qlonglong(report.filesChecked)))
            .arg(report.seconds, 0, 'f', 1));
    const int errors = report.errorCount();
    const int warnings = report.warningCount();
    const int notes = int(report.findings.size()) - errors - warnings;
    printOut(QStringLiteral("  %1 %2, %3 %4, %5 %6")
                 .arg(errors)
                 .arg(errors == 1 ? QStringLiteral("error") : QStringLiteral("errors"))
                 .arg(warnings)
                 .arg(warnings == 1 ? QStringLiteral("warning") : QStringLiteral("warnings"))
                 .arg(notes)
                 .arg(notes == 1 ? QStringLiteral("note") : QStringLiteral("notes")));
    std::map<int, int> perKind;
    for (const HealthFinding &finding : report.findings)
        ++perKind[int(finding.kind)];
    for (const auto &[kind, count] : perKind) {
        printOut(QStringLiteral("  %1 %2")
                     .arg(QString::fromLatin1(healthKindKey(HealthFinding::Kind(kind))), -16)
                     .arg(count));
    }
    for (const HealthFinding &finding : report.findings) {
        printOut(QString::fromLatin1(healthSeverityKey(finding.severity)) + QStringLiteral(": ")
                 + finding.message);
    }
    if (report.findings.isEmpty() && report.filesChecked > 0)
        printOut(QStringLiteral("All images load as torchvision would load them."));
}

} // namespace

int runCheck(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Decodes every image torchvision's ImageFolder would load from ROOT (or "
                       "from each of its train/val/test splits) and lists the files its loader "
                       "would fail on (errors) and the odd ones (warnings): truncated, empty, "
                       "not an image, huge, tiny, CMYK or 16-bit, misnamed, duplicated.\n"
                       "Exit status: 0 without errors, 1 with errors, 2 for a bad command line."));
    const QCommandLineOption help = helpOption();
    const QCommandLineOption jsonOption(
        QStringLiteral("json"),
        QStringLiteral("Print one JSON object: root, files_checked, seconds, findings."));
    const QCommandLineOption minSideOption(
        QStringLiteral("min-side"),
        QStringLiteral("Report images with a side shorter than N pixels (default 8)."),
        QStringLiteral("N"), QStringLiteral("8"));
    const QCommandLineOption noDuplicatesOption(QStringLiteral("no-duplicates"),
                                                QStringLiteral("Do not look for duplicates."));
    parser.addOption(help);
    parser.addOption(jsonOption);
    parser.addOption(minSideOption);
    parser.addOption(noDuplicatesOption);
    parser.addPositionalArgument(
        QStringLiteral("ROOT"),
        QStringLiteral("An ImageFolder root, or a folder with train/ and val/ (or test/) splits."));
    if (const int code = parseCommandLine(parser, args); code >= 0)
        return code;
    if (parser.positionalArguments().size() != 1) {
        printError(QStringLiteral("check needs exactly one ROOT folder. Try `ifstudio-cli check "
                                  "--help`."));
        return kExitUsage;
    }
    bool minSideOk = false;
    const int minSide = parser.value(minSideOption).toInt(&minSideOk);
    if (!minSideOk || minSide < 0) {
        printError(QStringLiteral("--min-side needs a number of pixels, not “%1”.")
                       .arg(parser.value(minSideOption)));
        return kExitUsage;
    }
    const QString root = parser.positionalArguments().constFirst();
    if (!QFileInfo(root).isDir()) {
        printError(QStringLiteral("“%1” is not a folder.").arg(root));
        return kExitFailure;
    }

    const DatasetLayout layout = detectLayout(root);
    ScanOptions scanOptions;
    scanOptions.allowEmpty = true;
    scanOptions.threads = requestedThreads();
    const Result<DatasetScan> scanned = scanDataset(layout, scanOptions);
    if (!scanned) {
        printError(scanned.errorMessage());
        return kExitFailure;
    }
    QList<HealthTarget> targets;
    for (const QString &split : scanned->splits) {
        const IndexPtr index = scanned->index(split);
        if (!index->refusal.isEmpty())
            printErr(QStringLiteral("note: ") + index->refusal);
        targets.append({split, index.get()});
    }

    HealthOptions options;
    options.threads = requestedThreads();
    options.minSide = minSide;
    options.findDuplicates = !parser.isSet(noDuplicatesOption);

    g_interrupted = false;
    const auto previousHandler = std::signal(SIGINT, onInterrupt);
    ProgressLine progress(QStringLiteral("Checking"));
    const HealthReport report = checkHealth(
        targets, options, [&](int64_t done, int64_t total) { progress.update(done, total); },
        &g_interrupted);
    progress.finish();
    std::signal(SIGINT, previousHandler);

    const QString shownRoot = layout.root.isEmpty() ? root : layout.root;
    const QStringList shownSplits = layout.hasSplits() ? layout.splits : QStringList();
    if (parser.isSet(jsonOption))
        writeOut(reportJson(shownRoot, shownSplits, report));
    else
        printReport(shownRoot, shownSplits, report);
    if (report.cancelled) {
        printError(QStringLiteral("check interrupted after %1 files.").arg(report.filesChecked));
        return kExitCancelled;
    }
    return report.errorCount() > 0 ? kExitFailure : kExitOk;
}

} // namespace ifs::cli
