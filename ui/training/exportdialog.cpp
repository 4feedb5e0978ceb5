// The Export dialog: exportModel() in a BackgroundJob. See exportdialog.h.
#include "training/exportdialog.h"

#include "training/models.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTreeWidget>
#include <QVBoxLayout>

namespace ifs {

ExportDialog::ExportDialog(const QString &checkpointPath, QWidget *parent)
    : QDialog(parent)
    , m_checkpoint(checkpointPath)
{
    setWindowTitle(tr("Export Model"));
    auto *intro = new QLabel(
        tr("Export <b>%1</b> so that it runs without ImageFolder Studio: TorchScript for "
           "<tt>torch.jit.load</tt> and libtorch, ONNX for onnxruntime and OpenCV, with "
           "<tt>labels.json</tt>, <tt>preprocessing.json</tt> and a <tt>predict.py</tt> "
           "example.")
            .arg(QFileInfo(checkpointPath).fileName().toHtmlEscaped()),
        this);
    intro->setWordWrap(true);
    m_torchScript = new QCheckBox(tr("TorchScript (model.pt)"), this);
    m_torchScript->setChecked(true);
    m_onnx = new QCheckBox(tr("ONNX (model.onnx)"), this);
    m_onnx->setChecked(true);
    m_opset = new QSpinBox(this);
    m_opset->setRange(13, 17);
    m_opset->setValue(13);
    m_opset->setPrefix(tr("opset "));
    m_softmax = new QCheckBox(tr("Output probabilities (Softmax)"), this);
    auto *formats = new QHBoxLayout;
    formats->addWidget(m_torchScript);
    formats->addWidget(m_onnx);
    formats->addWidget(m_opset);
    formats->addWidget(m_softmax);
    formats->addStretch(1);
    m_folder = new QLineEdit(
        QDir(QFileInfo(checkpointPath).absolutePath())
            .filePath(QFileInfo(checkpointPath).completeBaseName() + QStringLiteral("-export")),
        this);
    m_browse = new QPushButton(tr("Browse…"), this);
    auto *folderRow = new QHBoxLayout;
    folderRow->addWidget(m_folder, 1);
    folderRow->addWidget(m_browse);
    m_verify = new QCheckBox(tr("Check the exported files against the model on real images"), this);
    m_verify->setChecked(true);
    m_arch = new QComboBox(this);
    m_arch->addItem(tr("As the checkpoint says"), QString());
    for (const ModelArch &arch : modelArchitectures())
        m_arch->addItem(arch.title, arch.name);
    m_valTransforms = new QLineEdit(this);
    m_valTransforms->setPlaceholderText(tr("As the checkpoint stores them"));
    auto *form = new QFormLayout;
    form->addRow(tr("Formats:"), formats);
    form->addRow(tr("Folder:"), folderRow);
    form->addRow(QString(), m_verify);
    form->addRow(tr("Architecture:"), m_arch);
    form->addRow(tr("Val transforms:"), m_valTransforms);

    m_status = new QLabel(this);
    m_status->setWordWrap(true);
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 0);
    m_progress->hide();
    m_files = new QTreeWidget(this);
    m_files->setColumnCount(3);
    m_files->setHeaderLabels({tr("File"), tr("Size"), tr("Check")});
    m_files->setRootIsDecorated(false);
    m_files->header()->setSectionResizeMode(0, QHeaderView::Stretch);
    m_files->header()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
    m_files->header()->setSectionResizeMode(2, QHeaderView::ResizeToContents);
    m_export = new QPushButton(tr("Export"), this);
    m_export->setDefault(true);
    m_close = new QPushButton(tr("Close"), this);
    auto *buttons = new QHBoxLayout;
    buttons->addStretch(1);
    buttons->addWidget(m_export);
    buttons->addWidget(m_close);
    auto *layout = new QVBoxLayout(this);
    layout->addWidget(intro);
    layout->addLayout(form);
    layout->addWidget(m_status);
    layout->addWidget(m_progress);
    layout->addWidget(m_files, 1);
    layout->addLayout(buttons);
    resize(720, 480);

    connect(m_onnx, &QCheckBox::toggled, m_opset, &QWidget::setEnabled);
    connect(m_onnx, &QCheckBox::toggled, m_softmax, &QWidget::setEnabled);
    connect(m_browse, &QPushButton::clicked, this, [this] {
        const QString folder
            = QFileDialog::getExistingDirectory(this, tr("Export to"), m_folder->text());
        if (!folder.isEmpty())
            m_folder->setText(folder);
    });
    connect(m_export, &QPushButton::clicked, this, &ExportDialog::startExport);
    connect(m_close, &QPushButton::clicked, this, [this] {
        if (m_job.isRunning())
            m_job.requestCancel();
        else
            reject();
    });
    m_job.setThreadPool(BackgroundJobBase::dedicatedPool(QStringLiteral("ifs-training"), 4));
    m_job.onProgress([this](const QString &stage) { m_status->setText(stage); });
    m_job.onFinished([this](ExportResult result) {
        setRunning(false);
        showResult(result);
        Q_EMIT exportEnded();
    });
    m_job.onFailed([this](const Error &error) {
        setRunning(false);
        m_status->setText(tr("The export failed: %1").arg(error.message));
        Q_EMIT exportEnded();
    });
    m_job.onCancelled([this] {
        setRunning(false);
        m_status->setText(tr("Cancelled."));
        Q_EMIT exportEnded();
    });
}

ExportDialog::~ExportDialog() = default; // the job drops a run still going: it ends alone

ExportOptions ExportDialog::options() const
{
    ExportOptions o;
    o.formats.clear();
    if (m_torchScript->isChecked())
        o.formats.append(ExportFormat::TorchScript);
    if (m_onnx->isChecked())
        o.formats.append(ExportFormat::Onnx);
    o.outDir = m_folder->text().trimmed();
    o.opset = m_opset->value();
    o.softmax = m_softmax->isChecked();
    o.verify = m_verify->isChecked();
    o.arch = m_arch->currentData().toString();
    o.valTransforms = m_valTransforms->text().trimmed();
    return o;
}

void ExportDialog::setOutputFolder(const QString &folder)
{
    m_folder->setText(folder);
}

void ExportDialog::setFormats(bool torchScript, bool onnx)
{
    m_torchScript->setChecked(torchScript);
    m_onnx->setChecked(onnx);
}

void ExportDialog::setModelHints(const QString &arch, const QString &valTransforms)
{
    m_arch->setCurrentIndex(std::max(0, m_arch->findData(arch)));
    m_valTransforms->setText(valTransforms);
}

void ExportDialog::setRunning(bool running)
{
    m_progress->setVisible(running);
    m_export->setEnabled(!running);
    m_close->setText(running ? tr("Cancel") : tr("Close"));
}

void ExportDialog::startExport()
{
    m_files->clear();
    m_result = {};
    setRunning(true);
    m_status->setText(tr("Loading the model…"));
    m_job.start([path = m_checkpoint,
                 options = options()](JobContext<QString> &context) -> Result<ExportResult> {
        auto result = exportModel(
            path, options, [&context](const QString &stage) { context.setProgress(stage); },
            context.cancelFlag());
        if (!result && context.isCancelled())
            return JobContext<QString>::cancelled();
        return result;
    });
}

bool ExportDialog::waitForWorker(int milliseconds)
{
    return m_job.waitForWorker(QDeadlineTimer(milliseconds));
}

QString ExportDialog::statusText() const
{
    return m_status->text();
}

void ExportDialog::showResult(const ExportResult &result)
{
    m_result = result;
    QStringList lines;
    for (const ExportedFormat &f : result.formats) {
        lines.append(
            f.verified
                ? tr("%1 checked on %2 images: largest difference %3 (allowed %4).")
                      .arg(exportFormatName(f.format) == u"onnx" ? tr("ONNX") : tr("TorchScript"))
                      .arg(f.verifyImages)
                      .arg(f.maxAbsDiff, 0, 'g', 3)
                      .arg(f.tolerance, 0, 'g', 3)
                : tr("%1 written, not checked.")
                      .arg(exportFormatName(f.format) == u"onnx" ? tr("ONNX") : tr("TorchScript")));
    }
    for (const QString &warning : result.warnings)
        lines.append(tr("Warning: %1").arg(warning));
    m_status->setText(tr("Exported %1 (%2 classes) to %3. ")
                          .arg(result.arch)
                          .arg(result.classes.size())
                          .arg(QDir::toNativeSeparators(m_folder->text()))
                      + lines.join(u' '));
    for (const QString &file : result.files) {
        auto *item = new QTreeWidgetItem(m_files);
        item->setText(0, QFileInfo(file).fileName());
        item->setToolTip(0, QDir::toNativeSeparators(file));
        item->setText(1, QLocale().formattedDataSize(QFileInfo(file).size()));
        item->setTextAlignment(1, Qt::AlignRight | Qt::AlignVCenter);
        for (const ExportedFormat &f : result.formats) {
            if (f.modelPath == file)
                item->setText(2,
                              f.verified ? tr("max |Δ| %1").arg(f.maxAbsDiff, 0, 'g', 3)
                                         : tr("not checked"));
        }
    }
}

void ExportDialog::reject()
{
    if (m_job.isRunning())
        m_job.discard(); // closing: the export stops at its next stage, unreported
    QDialog::reject();
}

} // namespace ifs
