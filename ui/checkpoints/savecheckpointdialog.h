#pragma once

#include "checkpoint/checkpointrepair.h"
#include "checkpoint/checkpointvalue.h"
#include "checkpoints/checkpointsavejob.h"

#include <QDialog>

#include <functional>

class QCheckBox;
class QComboBox;
class QDialogButtonBox;
class QFormLayout;
class QLabel;
class QLineEdit;
class QProgressBar;
class QRadioButton;

namespace ifs {

class Settings;

/// "Save As" for a checkpoint: the whole value or a sub-dict chosen in the tree, OrderedDict or
/// dict, a float cast, a device tag, torch.save zip or safetensors, verified after writing. Writes
/// on a worker (CheckpointSaveJob); an existing file is replaced only after confirmation, and the
/// replaced file is kept as `name.bak`.
class SaveCheckpointDialog : public QDialog
{
    Q_OBJECT

public:
    /// `root`: what the checkpoint holds; `inputPath`: the file it came from (may be empty);
    /// `selection`: a dict inside it chosen in the tree (empty: none).
    SaveCheckpointDialog(const ckpt::Value &root, const QString &inputPath,
                         const ckpt::KeyPath &selection, Settings *settings,
                         QWidget *parent = nullptr);
    ~SaveCheckpointDialog() override;

    void setPath(const QString &path);
    QString path() const;
    /// Asks whether an existing file may be replaced; a message box by default. Tests replace it.
    void setOverwriteConfirmer(std::function<bool(const QString &path)> confirm);
    /// The save as the form says (what the Save button does).
    void startSave();
    /// The value the form would write, before the cast and device operations.
    ckpt::Value chosenValue() const;
    QList<ckpt::Operation> chosenOperations() const;

Q_SIGNALS:
    void saved(const QString &path, const QStringList &notes);
    void saveFailed(const QString &message);

protected:
    void reject() override;

private:
    /// What to write, how (container, types, device tag, format) and where.
    QFormLayout *buildForm();
    /// Beside the file read ("name_fixed.pt"), else "checkpoint.pt" in the last folder.
    QString defaultPath() const;
    void connectSignals();
    void browse();
    void updateForm();

    ckpt::Value m_root;
    QString m_inputPath;
    ckpt::KeyPath m_selection;
    Settings *m_settings;
    std::function<bool(const QString &)> m_confirm;
    CheckpointSaveJob *m_job;

    QRadioButton *m_whole;
    QRadioButton *m_selected;
    QComboBox *m_container;
    QComboBox *m_cast;
    QComboBox *m_device;
    QComboBox *m_format;
    QLineEdit *m_path;
    QCheckBox *m_verify;
    QLabel *m_status;
    QProgressBar *m_progress;
    QDialogButtonBox *m_buttons;
};

} // namespace ifs
