@needs-pbx-sim
@cap-make-call @cap-pbx-profiles
Feature: PBX profiles
  Scenario Outline: Click to dial on a <pbx> PBX
    Given the PBX is <pbx>
    And alice is signed in
    When alice dials bob
    Then bob's desk phone rings
    And alice sees the call as delivered
    When bob answers at the desk phone
    Then alice sees the call as established
    And alice saw no protocol violations

    @profile-generic
    Examples: standard
      | pbx      |
      | generic  |

    @profile-osv
    Examples: OpenScape Voice
      | pbx       |
      | OpenScape |

    @profile-aes
    Examples: Avaya AES
      | pbx    |
      | Avaya  |
