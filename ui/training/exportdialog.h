#pragma once

#include "common/backgroundjob.h"
#include "training/modelexport.h"

#include <QDialog>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTreeWidget;

namespace ifs {

/// "Export Model": a checkpoint's model as TorchScript and/or ONNX with labels.json,
/// preprocessing.json and predict.py (exportModel()), run as a BackgroundJob (Cancel), then
/// checked against the model on real images; the result lists the files written and each
/// format's largest difference. For a bare state dict (a model trained in Python) the
/// architecture and val transforms are asked for.
class ExportDialog : public QDialog
{
    Q_OBJECT

public:
    explicit ExportDialog(const QString &checkpointPath, QWidget *parent = nullptr);
    ~ExportDialog() override;

    QString checkpointPath() const { return m_checkpoint; }
    /// The options the form says.
    ExportOptions options() const;
    void setOutputFolder(const QString &folder);
    void setFormats(bool torchScript, bool onnx);
    /// Architecture and val transforms for checkpoints that do not say them.
    void setModelHints(const QString &arch, const QString &valTransforms);

    /// Starts the export (the Export button).
    void startExport();
    bool isRunning() const { return m_job.isRunning(); }
    /// Blocks until the run's worker returned (tests); its outcome comes from the event loop.
    bool waitForWorker(int milliseconds);
    const ExportResult &result() const { return m_result; }
    QString statusText() const;
    QTreeWidget *fileList() const { return m_files; }

Q_SIGNALS:
    /// The export ended: finished, failed or cancelled (after the dialog shows it).
    void exportEnded();

protected:
    void reject() override;

private:
    void showResult(const ExportResult &result);
    void setRunning(bool running);

    QString m_checkpoint;
    BackgroundJob<ExportResult, QString> m_job;
    ExportResult m_result;
    QCheckBox *m_torchScript;
    QCheckBox *m_onnx;
    QSpinBox *m_opset;
    QCheckBox *m_softmax;
    QCheckBox *m_verify;
    QLineEdit *m_folder;
    QPushButton *m_browse;
    QComboBox *m_arch;
    QLineEdit *m_valTransforms;
    QLabel *m_status;
    QProgressBar *m_progress;
    QTreeWidget *m_files;
    QPushButton *m_export;
    QPushButton *m_close;
};

} // namespace ifs
